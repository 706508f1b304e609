#include "model/training/config_diff.hpp"

#include <sstream>
#include <utility>

namespace longnet {
namespace {

// ("section.key", value text) of every line of to_toml's output, in order.
std::vector<std::pair<std::string, std::string>> fields_of(const TrainConfig& config) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(to_toml(config));
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() == '#') continue;
    if (line.front() == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    const auto eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq);
    out.emplace_back(section.empty() ? key : section + "." + key, line.substr(eq + 3));
  }
  return out;
}

}  // namespace

bool change_refused_on_resume(const std::string& field) {
  return field.starts_with("model.") || field == "data.seq_len" || field == "seed";
}

std::vector<ConfigChange> config_changes(const TrainConfig& saved, const TrainConfig& now) {
  const auto before = fields_of(saved), after = fields_of(now);
  std::vector<ConfigChange> changes;
  // Both come from to_toml, which writes every field in one fixed order.
  for (std::size_t i = 0; i < before.size() && i < after.size(); ++i) {
    if (before[i].second != after[i].second) {
      changes.push_back({after[i].first, before[i].second, after[i].second,
                         change_refused_on_resume(after[i].first)});
    }
  }
  return changes;
}

}  // namespace longnet
