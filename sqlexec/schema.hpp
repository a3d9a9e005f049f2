#pragma once
//! Schema introspection of a Database and its rendering as compact prompt text.
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sqlexec/database.hpp"

namespace t2s::sqlexec {

//! One column: name, declared type, key flag and a few distinct non-NULL sample values (rendered).
struct Column {
  std::string name;                  //!< column name as declared
  std::string type;                  //!< declared type ("" when none)
  bool primary_key = false;          //!< part of the table's primary key
  std::vector<std::string> samples;  //!< distinct non-NULL values as text (TEXT values unquoted)
  std::vector<Value> sample_values;  //!< the same samples as typed values (empty when built by hand)
};

//! A foreign key edge, one column pair (composite keys give one edge per pair).
struct ForeignKey {
  std::string from_table;   //!< referencing table
  std::string from_column;  //!< referencing column
  std::string to_table;     //!< referenced table
  std::string to_column;    //!< referenced column (the parent's primary key when the DDL names none)
};

//! One table and its columns in declaration order.
struct Table {
  std::string name;             //!< table name
  std::vector<Column> columns;  //!< columns in declaration order
};

//! A database schema: tables in creation order and the foreign keys between them.
struct Schema {
  std::string db_id;                     //!< the database file's stem
  std::vector<Table> tables;             //!< user tables (sqlite_* internals excluded)
  std::vector<ForeignKey> foreign_keys;  //!< all foreign key column pairs
};

//! Reads tables, columns, keys and `samples_per_column` distinct sample values per column from `db`.
Schema introspect(const Database& db, int samples_per_column = 3);

//! What to include in a schema prompt.
struct SchemaPromptOptions {
  std::vector<std::string> tables;                          //!< keep only these tables (empty: all); case-insensitive
  std::map<std::string, std::vector<std::string>> columns;  //!< per table, keep only these columns (keys always kept)
  bool samples = true;                                      //!< add "-- e.g. ..." sample comments
  size_t max_sample_chars = 40;                             //!< longer sample values are cut with "..."
  bool foreign_keys = true;                                 //!< add FOREIGN KEY lines between kept tables
};

//! The schema as CREATE TABLE statements with sample comments, prefixed by "-- Database: <db_id>".
std::string schema_prompt(const Schema& schema, const SchemaPromptOptions& options = {});

//! Counts the tokens of a text under some tokenizer.
using TokenCounter = std::function<int(std::string_view)>;

//! A tokenizer-free token estimate calibrated on BPE tokenizers for SQL/schema text (see docs/sqlexec.md).
int estimate_tokens(std::string_view text);

//! Tokens of `schema_prompt(schema, options)` under `counter` (estimate_tokens when empty).
int schema_prompt_tokens(const Schema& schema, const SchemaPromptOptions& options = {},
                         const TokenCounter& counter = {});

//! `name` as an SQL identifier: unchanged when it is a plain word, else double-quoted with quotes doubled.
std::string quote_identifier(std::string_view name);

}  // namespace t2s::sqlexec
