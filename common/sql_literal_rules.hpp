#pragma once
//! The literals (and ordering comparisons) a generated SQL answer may contain: a decoding constraint the agent states
//! and an engine enforces.
#include <string>
#include <utility>
#include <vector>

namespace t2s {

//! Allowed literals of the SQL inside an answer's ```sql code block. A call without rules is unconstrained; with
//! rules, every '…' string literal must spell one of `named_values` or `strings` (after LIKE also one of
//! `like_patterns`; as strftime's format one of `formats`) and every
//! numeric literal one of `numbers` (after LIMIT or OFFSET also one of `limit_numbers`).
struct SqlLiteralRules {
  //! Values the question names ("Newport", a date), in the order it names them: until each was written, a
  //! single-quoted literal (outside LIKE and strftime) must be the next of them; then they and `strings` may repeat.
  std::vector<std::string> named_values{};
  std::vector<std::string> strings{};        //!< further allowed contents of single-quoted literals (unescaped bytes)
  std::vector<std::string> like_patterns{};  //!< further contents allowed right after LIKE ("%Newport%")
  std::vector<std::string> formats{};        //!< contents allowed as strftime's first argument ("%Y")
  std::vector<std::string> numbers{};        //!< allowed numeric literals, exactly as written (digits and '.')
  std::vector<std::string> limit_numbers{};  //!< further numbers allowed right after LIMIT or OFFSET
  //! Ordering comparisons the question states, of "<", "<=", ">", ">=" ("below 1968" states "<"). Empty: any; else
  //! every ordering operator must be one of them (<> stays allowed with "<" or "<=", != always).
  std::vector<std::string> comparisons{};
  //! The database's tables, each with its columns. Empty: names are free; else a name after FROM or JOIN must be a
  //! table, "X.c" a column of X's table, and a bare name after FROM a keyword, a function (then '(' follows), a
  //! column of a table in scope or an alias; a select list, whose tables come later, may name any column.
  std::vector<std::pair<std::string, std::vector<std::string>>> tables{};
  //! The functions the first item of the first select list must start with (DISTINCT may come before), as the
  //! question's opening asks: COUNT, SUM or CAST for "How many …", MIN for "What is the minimum …". Empty: any item.
  std::vector<std::string> first_item{};
};

}  // namespace t2s
