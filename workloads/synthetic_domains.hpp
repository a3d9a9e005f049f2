#pragma once
//! The synthetic benchmark's domain descriptions (tables, columns, value distributions, English phrases).
#include <cstddef>
#include <string>
#include <vector>

namespace t2s::workloads::synth {

//! How a column's values are made.
enum class Kind { pk, fk, name, category, integer, real, date };
//! Distribution of a numeric column between lo and hi (lognormal: median lo, sigma hi).
enum class Shape { uniform, normal, skewed, lognormal };

//! One column.
struct Col {
  std::string name;
  Kind kind = Kind::integer;
  std::string phrase;                //!< how questions say it ("unit price")
  std::string ref;                   //!< fk: referenced table; name: pool ("person", "product", …)
  std::vector<std::string> values;   //!< category values; name: a fixed list used in order
  std::vector<double> weights;       //!< category weights (empty = uniform)
  double lo = 0, hi = 0;             //!< numeric range / date years / fk skew exponent (lo)
  Shape shape = Shape::uniform;
};

//! One table; `rows` is the count at scale 1.
struct Table {
  std::string name, singular, plural;
  size_t rows = 0;
  std::vector<Col> cols;
};

//! One database.
struct Domain {
  std::string db_id;
  std::vector<Table> tables;  //!< parents before children
};

//! The six domains: retail, flights, university, hospital, music, library.
std::vector<Domain> domains();

//! Word pools for generated names.
const std::vector<std::string>& pool(const std::string& name);

}  // namespace t2s::workloads::synth
