#pragma once
//! Pulling one SQL query out of free-form model output.
#include <optional>
#include <string>
#include <string_view>

namespace t2s::sqlexec {

//! The first SELECT/WITH statement in `model_text`, without its trailing semicolon, or nullopt when there is none.
//! Looks in fenced code blocks first (```sql before untagged ones), then after "SQL:" labels, then in the whole
//! text; the statement ends at a `;` outside quotes, a closing fence, a blank line or a line of prose.
std::optional<std::string> extract_sql(std::string_view model_text);

}  // namespace t2s::sqlexec
