#include "workloads/synthetic_domains.hpp"

#include <map>
#include <stdexcept>

namespace t2s::workloads::synth {

namespace {

Col pk() { return Col{"id", Kind::pk, "id", "", {}, {}, 0, 0, Shape::uniform}; }
Col fk(std::string name, std::string table, std::string phrase, double skew = 1.0) {
  return Col{std::move(name), Kind::fk, std::move(phrase), std::move(table), {}, {}, skew, 0, Shape::uniform};
}
Col named(std::string name, std::string pool_name, std::string phrase) {
  return Col{std::move(name), Kind::name, std::move(phrase), std::move(pool_name), {}, {}, 0, 0, Shape::uniform};
}
Col listed(std::string name, std::vector<std::string> values, std::string phrase) {
  return Col{std::move(name), Kind::name, std::move(phrase), "", std::move(values), {}, 0, 0, Shape::uniform};
}
Col cat(std::string name, std::string phrase, std::vector<std::string> values, std::vector<double> weights = {}) {
  return Col{std::move(name), Kind::category, std::move(phrase), "", std::move(values), std::move(weights), 0, 0,
             Shape::uniform};
}
Col integer(std::string name, std::string phrase, double lo, double hi, Shape shape = Shape::uniform) {
  return Col{std::move(name), Kind::integer, std::move(phrase), "", {}, {}, lo, hi, shape};
}
Col real(std::string name, std::string phrase, double lo, double hi, Shape shape) {
  return Col{std::move(name), Kind::real, std::move(phrase), "", {}, {}, lo, hi, shape};
}
Col date(std::string name, std::string phrase, int y0, int y1) {
  return Col{std::move(name), Kind::date, std::move(phrase), "", {}, {}, double(y0), double(y1), Shape::uniform};
}

const std::vector<std::string> kCities = {
    "Springfield", "Riverton", "Lakewood", "Fairview", "Greenville", "Madison", "Georgetown", "Clinton", "Salem",
    "Franklin", "Bristol", "Ashland", "Oakdale", "Milton", "Newport", "Dayton", "Kingston", "Burlington", "Dover",
    "Auburn", "Hudson", "Marion", "Oxford", "Jackson", "Winchester", "Lexington", "Arlington", "Chester", "Florence",
    "Canton", "Monroe", "Princeton", "Quincy", "Trenton", "Warren", "Shelby", "Jamestown", "Hamilton", "Easton",
    "Clayton"};
const std::vector<std::string> kCountries = {"USA", "Canada", "Mexico", "Brazil", "UK", "France", "Germany",
                                             "Spain", "Italy", "Japan", "India", "Australia"};

}  // namespace

const std::vector<std::string>& pool(const std::string& name) {
  static const std::map<std::string, std::vector<std::string>> pools = {
      {"first",
       {"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
        "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Daniel", "Lisa",
        "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Paul", "Emily", "Steven", "Donna", "Andrew",
        "Michelle", "Kenji", "Aisha", "Wei", "Priya", "Olga", "Mateo", "Fatima", "Lucas", "Chloe", "Omar", "Hannah",
        "Ivan", "Sofia", "Noah", "Grace", "Liam"}},
      {"last",
       {"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
        "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
        "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
        "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts"}},
      {"adjective",
       {"Classic", "Deluxe", "Compact", "Smart", "Ultra", "Eco", "Premium", "Basic", "Pro", "Mini", "Grand", "Silver",
        "Golden", "Rapid", "Quiet", "Bright", "Urban", "Royal", "Nova", "Prime", "Crystal", "Velvet", "Rustic",
        "Modern", "Vintage", "Solar", "Arctic", "Lunar", "Coastal", "Wild"}},
      {"product",
       {"Kettle", "Blender", "Lamp", "Backpack", "Headphones", "Jacket", "Sneakers", "Mug", "Toaster", "Chair", "Desk",
        "Monitor", "Keyboard", "Camera", "Watch", "Speaker", "Blanket", "Pillow", "Skillet", "Bicycle", "Tent",
        "Umbrella", "Notebook", "Router", "Drill", "Vacuum", "Heater", "Fan", "Mixer", "Scale"}},
      {"song",
       {"Heart", "River", "Night", "Dream", "Fire", "Road", "Light", "Rain", "Sky", "Echo", "Shadow", "Ocean", "Summer",
        "Winter", "Highway", "Garden", "Mirror", "Thunder", "Horizon", "Silence", "Morning", "Star", "City", "Wave",
        "Storm", "Memory", "Signal", "Paradise", "Harbor", "Carnival"}},
      {"band_suffix", {"Collective", "Band", "Project", "Trio", "Quartet", "Ensemble", "Crew", "Club", "Orchestra"}},
      {"city", kCities},
      {"course_prefix", {"Introduction to", "Advanced", "Applied", "Foundations of", "Topics in", "Seminar in"}},
      {"course_subject",
       {"Algebra", "Mechanics", "Organic Chemistry", "Genetics", "Algorithms", "Medieval History", "Microeconomics",
        "Ethics", "Cognition", "Syntax", "Harmony", "Thermodynamics", "Anatomy", "Contract Law", "Statistics",
        "Databases", "Optics", "Ecology", "Logic", "Phonetics"}},
  };
  auto it = pools.find(name);
  if (it == pools.end()) throw std::logic_error("synthetic: unknown word pool " + name);
  return it->second;
}

std::vector<Domain> domains() {
  std::vector<Domain> out;
  out.push_back(Domain{
      "retail",
      {
          Table{"stores", "store", "stores", 40,
                {pk(), named("name", "city", "name"), cat("region", "region", {"North", "South", "East", "West"}),
                 date("opened", "opening date", 1995, 2022), integer("floor_area", "floor area", 300, 5000)}},
          Table{"categories", "category", "categories", 12,
                {pk(),
                 listed("name",
                        {"Kitchen", "Electronics", "Clothing", "Sports", "Garden", "Toys", "Books", "Beauty",
                         "Furniture", "Office", "Outdoor", "Tools"},
                        "name")}},
          Table{"customers", "customer", "customers", 8000,
                {pk(), named("name", "person", "name"), cat("city", "city", kCities),
                 cat("segment", "segment", {"Consumer", "Corporate", "Small Business"}, {6, 3, 1}),
                 integer("age", "age", 18, 85, Shape::normal), date("joined", "join date", 2010, 2024)}},
          Table{"products", "product", "products", 1500,
                {pk(), named("name", "product", "name"), fk("category_id", "categories", "category", 1.3),
                 real("unit_price", "unit price", 25, 0.8, Shape::lognormal),
                 cat("brand", "brand", {"Acme", "Zenith", "Orion", "Vertex", "Nimbus", "Apex", "Summit"}),
                 integer("stock", "stock level", 0, 500, Shape::skewed)}},
          Table{"orders", "order", "orders", 40000,
                {pk(), fk("customer_id", "customers", "customer", 1.6), fk("store_id", "stores", "store", 1.4),
                 date("order_date", "order date", 2019, 2024),
                 cat("channel", "channel", {"online", "in store", "phone"}, {5, 4, 1}),
                 cat("status", "status", {"delivered", "shipped", "processing", "cancelled", "returned"},
                     {70, 12, 8, 6, 4})}},
          Table{"order_items", "order item", "order items", 110000,
                {pk(), fk("order_id", "orders", "order"), fk("product_id", "products", "product", 2.0),
                 integer("quantity", "quantity", 1, 12, Shape::skewed),
                 real("discount", "discount", 0, 0.3, Shape::uniform)}},
      }});
  out.push_back(Domain{
      "flights",
      {
          Table{"airlines", "airline", "airlines", 25,
                {pk(),
                 listed("name",
                        {"Aurora Air", "Bluebird Airways", "Cascade Airlines", "Delta Sun", "Eagle Wings",
                         "Falcon Jet", "Global Sky", "Harbor Air", "Island Hopper", "Jetstream", "Kestrel Air",
                         "Liberty Airlines", "Meridian Air", "Northern Lights", "Oceanic", "Pacific Crest",
                         "Quantum Air", "Redwood Airlines", "Skyline", "Transcon", "Unity Air", "Vista Airways",
                         "Westwind", "Xpress Air", "Zephyr Airlines"},
                        "name"),
                 cat("country", "country", kCountries), integer("founded", "founding year", 1930, 2015)}},
          Table{"airports", "airport", "airports", 40,
                {pk(), named("name", "city", "name"), cat("country", "country", kCountries),
                 integer("elevation", "elevation", 0, 2500, Shape::skewed),
                 integer("runways", "number of runways", 1, 6, Shape::skewed)}},
          Table{"aircraft", "aircraft", "aircraft", 400,
                {pk(), cat("model", "model", {"A320", "A321", "A330", "A350", "B737", "B747", "B777", "B787", "E190"}),
                 fk("airline_id", "airlines", "airline", 1.2), integer("capacity", "capacity", 70, 420, Shape::normal),
                 integer("year_built", "build year", 1995, 2023)}},
          Table{"flights", "flight", "flights", 30000,
                {pk(), fk("airline_id", "airlines", "airline", 1.3), fk("origin_id", "airports", "origin airport", 1.5),
                 fk("destination_id", "airports", "destination airport", 1.5),
                 fk("aircraft_id", "aircraft", "aircraft"), date("flight_date", "flight date", 2022, 2024),
                 integer("distance", "distance in kilometres", 150, 9000, Shape::skewed),
                 integer("delay", "delay in minutes", 0, 300, Shape::skewed),
                 cat("status", "status", {"on time", "delayed", "cancelled", "diverted"}, {75, 20, 4, 1})}},
          Table{"bookings", "booking", "bookings", 60000,
                {pk(), fk("flight_id", "flights", "flight"), named("passenger", "person", "passenger name"),
                 cat("class", "travel class", {"economy", "premium economy", "business", "first"}, {70, 15, 12, 3}),
                 real("fare", "fare", 180, 0.6, Shape::lognormal), integer("bags", "number of bags", 0, 3)}},
      }});
  out.push_back(Domain{
      "university",
      {
          Table{"departments", "department", "departments", 14,
                {pk(),
                 listed("name",
                        {"Mathematics", "Physics", "Chemistry", "Biology", "Computer Science", "History", "Economics",
                         "Philosophy", "Psychology", "Linguistics", "Music", "Engineering", "Medicine", "Law"},
                        "name"),
                 cat("building", "building", {"Main Hall", "North Wing", "Science Center", "Arts Building"}),
                 real("budget", "budget", 900000, 0.5, Shape::lognormal)}},
          Table{"instructors", "instructor", "instructors", 300,
                {pk(), named("name", "person", "name"), fk("department_id", "departments", "department", 1.2),
                 cat("rank", "rank", {"Lecturer", "Assistant Professor", "Associate Professor", "Professor"},
                     {3, 3, 2, 2}),
                 real("salary", "salary", 85000, 0.25, Shape::lognormal), integer("hire_year", "hire year", 1985, 2024)}},
          Table{"students", "student", "students", 6000,
                {pk(), named("name", "person", "name"), fk("major_id", "departments", "major department", 1.3),
                 integer("enrollment_year", "enrollment year", 2016, 2024),
                 real("gpa", "GPA", 1.5, 4.0, Shape::normal), cat("home_city", "home city", kCities)}},
          Table{"courses", "course", "courses", 400,
                {pk(), named("title", "course", "title"), fk("department_id", "departments", "department", 1.1),
                 integer("credits", "number of credits", 1, 6), cat("level", "level", {"100", "200", "300", "400"})}},
          Table{"sections", "section", "sections", 2000,
                {pk(), fk("course_id", "courses", "course"), fk("instructor_id", "instructors", "instructor", 1.2),
                 cat("semester", "semester", {"Fall", "Spring", "Summer"}, {5, 5, 1}),
                 integer("year", "year", 2018, 2024), integer("capacity", "capacity", 15, 250, Shape::skewed)}},
          Table{"enrollments", "enrollment", "enrollments", 40000,
                {pk(), fk("student_id", "students", "student"), fk("section_id", "sections", "section", 1.3),
                 cat("grade", "grade", {"A", "B", "C", "D", "F"}, {30, 35, 20, 10, 5}),
                 integer("attendance", "attendance percentage", 40, 100, Shape::normal)}},
      }});
  out.push_back(Domain{
      "hospital",
      {
          Table{"wards", "ward", "wards", 18,
                {pk(),
                 listed("name",
                        {"Cardiology", "Oncology", "Pediatrics", "Maternity", "Orthopedics", "Neurology", "Geriatrics",
                         "Emergency", "Intensive Care", "Surgery", "Psychiatry", "Dermatology", "Urology", "Nephrology",
                         "Pulmonology", "Gastroenterology", "Rheumatology", "Endocrinology"},
                        "name"),
                 integer("floor", "floor", 1, 9), integer("beds", "number of beds", 8, 60, Shape::normal)}},
          Table{"doctors", "doctor", "doctors", 160,
                {pk(), named("name", "person", "name"), fk("ward_id", "wards", "ward", 1.1),
                 cat("specialty", "specialty",
                     {"cardiologist", "oncologist", "pediatrician", "surgeon", "neurologist", "internist"}),
                 integer("experience", "years of experience", 1, 40, Shape::skewed)}},
          Table{"patients", "patient", "patients", 9000,
                {pk(), named("name", "person", "name"), cat("gender", "gender", {"female", "male"}),
                 integer("birth_year", "birth year", 1930, 2023, Shape::normal), cat("city", "city", kCities),
                 cat("insurance", "insurance plan", {"public", "private", "none"}, {6, 3, 1})}},
          Table{"admissions", "admission", "admissions", 25000,
                {pk(), fk("patient_id", "patients", "patient", 1.4), fk("doctor_id", "doctors", "doctor", 1.3),
                 fk("ward_id", "wards", "ward", 1.2), date("admitted", "admission date", 2018, 2024),
                 integer("stay_days", "length of stay in days", 1, 60, Shape::skewed),
                 cat("diagnosis", "diagnosis",
                     {"influenza", "fracture", "pneumonia", "diabetes", "hypertension", "migraine", "appendicitis",
                      "asthma"}),
                 real("cost", "cost", 4000, 0.7, Shape::lognormal)}},
          Table{"prescriptions", "prescription", "prescriptions", 50000,
                {pk(), fk("admission_id", "admissions", "admission"),
                 cat("drug", "drug",
                     {"amoxicillin", "ibuprofen", "metformin", "lisinopril", "atorvastatin", "omeprazole",
                      "paracetamol", "insulin"}),
                 integer("dose_mg", "dose in milligrams", 5, 1000, Shape::skewed),
                 integer("days", "duration in days", 1, 30)}},
      }});
  out.push_back(Domain{
      "music",
      {
          Table{"artists", "artist", "artists", 500,
                {pk(), named("name", "band", "name"), cat("country", "country", kCountries),
                 cat("genre", "genre", {"rock", "pop", "jazz", "hip hop", "electronic", "folk", "classical"},
                     {5, 6, 2, 4, 3, 2, 1}),
                 integer("formed", "formation year", 1960, 2022)}},
          Table{"albums", "album", "albums", 3000,
                {pk(), named("title", "song", "title"), fk("artist_id", "artists", "artist", 1.5),
                 integer("release_year", "release year", 1965, 2024),
                 cat("label", "record label", {"Blue Note", "Sunset", "Northstar", "Indie Works", "Maple"})}},
          Table{"tracks", "track", "tracks", 30000,
                {pk(), named("title", "song", "title"), fk("album_id", "albums", "album"),
                 integer("duration", "duration in seconds", 90, 600, Shape::normal),
                 cat("explicit", "explicit flag", {"yes", "no"}, {1, 4})}},
          Table{"listeners", "listener", "listeners", 5000,
                {pk(), named("name", "person", "name"), cat("country", "country", kCountries),
                 cat("plan", "subscription plan", {"free", "premium", "family", "student"}, {5, 3, 1, 1}),
                 date("signup", "signup date", 2015, 2024)}},
          Table{"plays", "play", "plays", 80000,
                {pk(), fk("listener_id", "listeners", "listener", 1.5), fk("track_id", "tracks", "track", 2.2),
                 date("played_on", "play date", 2023, 2024),
                 integer("seconds_played", "seconds played", 5, 600, Shape::normal)}},
      }});
  out.push_back(Domain{
      "library",
      {
          Table{"authors", "author", "authors", 150,
                {pk(), named("name", "person", "name"), cat("country", "country", kCountries),
                 integer("birth_year", "birth year", 1900, 1995, Shape::normal)}},
          Table{"books", "book", "books", 900,
                {pk(), named("title", "song", "title"), fk("author_id", "authors", "author", 1.4),
                 cat("genre", "genre", {"novel", "poetry", "biography", "science", "history", "children"},
                     {5, 1, 2, 2, 2, 3}),
                 integer("pages", "number of pages", 60, 900, Shape::normal),
                 integer("published", "publication year", 1950, 2024)}},
          Table{"loans", "loan", "loans", 2000,
                {pk(), fk("book_id", "books", "book", 1.6), named("borrower", "person", "borrower name"),
                 date("loan_date", "loan date", 2020, 2024), integer("days", "loan length in days", 1, 60,
                                                                      Shape::skewed),
                 cat("returned", "returned flag", {"yes", "no"}, {9, 1})}},
      }});
  return out;
}

}  // namespace t2s::workloads::synth
