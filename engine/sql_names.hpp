#pragma once
//! The names a guided SQL answer may use: the database's tables and columns, SQLite's keywords and functions.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace t2s::engine {

//! Sorted, upper-case name sets with whole-name and prefix lookups (case-insensitive: callers pass upper case).
class SqlNames {
 public:
  //! No schema: checks() is false and the guide leaves identifiers alone.
  SqlNames() = default;
  //! The tables of a database, each with its columns.
  explicit SqlNames(const std::vector<std::pair<std::string, std::vector<std::string>>>& tables);
  //! True when a schema was given.
  bool checks() const { return !tables_.empty(); }
  //! Index of table `upper`, or -1.
  int table(std::string_view upper) const;
  //! True when some table's name starts with `upper`.
  bool table_prefix(std::string_view upper) const { return find(tables_, upper, true); }
  //! True when table `t` (-1: any table) has column `upper` (`prefix`: a column starting with it).
  bool column(int t, std::string_view upper, bool prefix) const;
  //! True when `upper` is (`prefix`: starts) a keyword that may stand alone (SELECT, DESC, NULL, CURRENT_DATE).
  bool keyword(std::string_view upper, bool prefix) const;
  //! True when `upper` is (`prefix`: starts) a function name, which must be followed by '('.
  bool function(std::string_view upper, bool prefix) const;
  //! True when `sorted` holds `s` (`prefix`: a name starting with `s`).
  static bool find(const std::vector<std::string>& sorted, std::string_view s, bool prefix);

 private:
  std::vector<std::string> tables_;                // sorted
  std::vector<int> table_index_;                   // tables_[i] is table table_index_[i] of the schema
  std::vector<std::vector<std::string>> columns_;  // per schema table, sorted
  std::vector<std::string> all_columns_;           // every table's, sorted, unique
};

}  // namespace t2s::engine
