#pragma once
//! Spider's official hardness rules (easy/medium/hard/extra), on the parsed `sql` dict of dev.json and on SQL text.
#include <rapidjson/document.h>

#include <string_view>

#include "workloads/workload.hpp"

namespace t2s::workloads {

//! The three component counts that Spider's `eval_hardness` combines.
struct HardnessCounts {
  int component1 = 0;  //!< WHERE, GROUP BY, ORDER BY, LIMIT, extra joined tables, ORs, LIKEs
  int component2 = 0;  //!< nested queries in conditions plus INTERSECT/UNION/EXCEPT
  int others = 0;      //!< >1 aggregation, >1 select column, >1 WHERE condition, >1 GROUP BY column
};

//! Spider's rule combining the counts into a level.
Difficulty hardness_from_counts(const HardnessCounts& c);

//! Counts on the parsed `sql` dict of Spider's dev.json (the official `count_component1/2`, `count_others`);
//! throws InputError when the value does not have that shape.
HardnessCounts hardness_counts_from_parsed(const rapidjson::Value& sql);

//! The same counts computed from SQL text (a small SQL parser that follows Spider's grammar and its quirks);
//! throws InputError when the text is not a SELECT query it can read.
HardnessCounts hardness_counts_from_text(std::string_view sql);

//! Hardness of SQL text by Spider's rules.
inline Difficulty sql_hardness(std::string_view sql) { return hardness_from_counts(hardness_counts_from_text(sql)); }

}  // namespace t2s::workloads
