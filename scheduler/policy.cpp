#include "scheduler/policy.hpp"

#include <stdexcept>

#include "common/status.hpp"

namespace t2s::scheduler {

void PolicyRegistry::add(const std::string& name, const std::string& description, PolicyFactory factory) {
  if (entries_.count(name)) throw std::logic_error("policy '" + name + "' registered twice");
  entries_[name] = Entry{description, std::move(factory)};
  order_.push_back(name);
}

Policy PolicyRegistry::make(const std::string& name, const PolicyContext& context) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    std::string known;
    for (const auto& n : order_) known += (known.empty() ? "" : ", ") + n;
    throw InputError("unknown policy '" + name + "' (known: " + known + ")");
  }
  Policy p = it->second.factory(context);
  p.name = name;
  const size_t n = context.cluster ? context.cluster->instances.size() : 0;
  if (!p.dispatcher || p.local.size() != n)
    throw std::logic_error("policy '" + name + "' factory must make a dispatcher and one local policy per instance");
  return p;
}

std::string PolicyRegistry::description(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? "" : it->second.description;
}

}  // namespace t2s::scheduler
