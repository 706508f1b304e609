// TrainConfig from TOML: one table of fields drives parsing, --set, to_toml and the
// lists of valid keys in error messages, so the four can never disagree about which keys
// exist. Each field knows its TOML table, key, type and allowed range; cross-field rules
// live in validate().
#include "model/training/train_config.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>  // Debian ships toml++ 3 as toml.h

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "model/training/config_sizes.hpp"
#include "runtime/error.hpp"

namespace longnet {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();
// More patterns than this is a typo, not a configuration (the paper uses up to 5).
constexpr int64_t kMaxPatterns = 16;
// Tokens are bytes: the embedding needs a row for each of the 256 values.
constexpr int64_t kByteValues = 256;
// Token ids are int32 in the batches TokenDataset hands out.
constexpr int64_t kMaxVocab = std::numeric_limits<int32_t>::max();

// ---- ranges ------------------------------------------------------------------------

struct IntRange {
  int64_t lo = 0, hi = kMaxInt;
  bool contains(int64_t v) const { return lo <= v && v <= hi; }
  std::string text() const {
    if (hi == kMaxInt) return fmt::format("an integer >= {}", lo);
    return fmt::format("an integer in [{}, {}]", lo, hi);
  }
};

struct RealRange {
  double lo = 0, hi = kInf;
  bool lo_open = false, hi_open = false;
  bool contains(double v) const {
    return std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
  std::string text() const {
    if (hi == kInf) return fmt::format("a finite number {} {}", lo_open ? ">" : ">=", lo);
    return fmt::format("a number in {}{}, {}{}", lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
  }
};

// ---- how values are shown ------------------------------------------------------------

// A TOML node as TOML writes it ("abc" with quotes, [1, 2], 0.5), for error messages.
std::string quoted(std::string_view text);

std::string node_text(const toml::node& node) {
  if (const auto* text = node.as_string()) return quoted(text->get());
  std::ostringstream out;
  node.visit([&out](const auto& value) { out << value; });
  return out.str();
}

std::string node_type_name(const toml::node& node) {
  std::ostringstream out;
  out << node.type();
  return out.str();
}

// "configs/tiny.toml:12" when the node came from a file line, else the source itself.
std::string located(std::string_view source, const toml::node& node) {
  const auto line = node.source().begin.line;
  return line > 0 ? fmt::format("{}:{}", source, line) : std::string(source);
}

// A double in the shortest form that reads back to the same bits, always with a '.' or
// an exponent so TOML reads it as a float, not an integer.
std::string real_text(double value) {
  std::string text = fmt::format("{}", value);
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04X}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// ---- fields --------------------------------------------------------------------------

// Access to one field of a section: config.*section.*member.
template <typename S, typename T>
struct Member {
  S TrainConfig::*section;
  T S::*member;
  T& operator()(TrainConfig& c) const { return c.*section.*member; }
  const T& operator()(const TrainConfig& c) const { return c.*section.*member; }
};

enum class Kind { integer, real, boolean, string, integer_list };

struct Field {
  std::string section;  // the TOML table; empty for a top-level key
  std::string key;
  Kind kind;
  std::string expected;  // "an integer in [1, 1024]": the type and range, for messages
  // Sets the field from `node` after checking type and range; `where` locates the value.
  std::function<void(TrainConfig&, const toml::node&, const std::string& where)> set;
  // The field's value as TOML.
  std::function<std::string(const TrainConfig&)> text;

  std::string name() const { return section.empty() ? key : section + "." + key; }
};

[[noreturn]] void wrong_type(const Field& f, const toml::node& node, const std::string& where) {
  fail("{}: {} = {} is a {}, expected {}", where, f.name(), node_text(node), node_type_name(node),
       f.expected);
}

[[noreturn]] void out_of_range(const std::string& name, const std::string& value,
                               const std::string& expected, const std::string& where) {
  fail("{}: {} = {} is out of range: expected {}", where, name, value, expected);
}

template <typename Access>
Field integer(std::string section, std::string key, Access access, IntRange range) {
  Field f{std::move(section), std::move(key), Kind::integer, range.text(), {}, {}};
  f.set = [f, access, range](TrainConfig& c, const toml::node& node, const std::string& where) {
    const auto* value = node.as_integer();
    if (value == nullptr) wrong_type(f, node, where);
    if (!range.contains(value->get())) out_of_range(f.name(), node_text(node), f.expected, where);
    access(c) = static_cast<std::remove_cvref_t<decltype(access(c))>>(value->get());
  };
  f.text = [access](const TrainConfig& c) { return fmt::format("{}", access(c)); };
  return f;
}

template <typename Access>
Field real(std::string section, std::string key, Access access, RealRange range) {
  Field f{std::move(section), std::move(key), Kind::real, range.text(), {}, {}};
  f.set = [f, access, range](TrainConfig& c, const toml::node& node, const std::string& where) {
    double value = 0;
    if (const auto* v = node.as_floating_point()) {
      value = v->get();
    } else if (const auto* i = node.as_integer()) {  // `lr = 1` means 1.0
      value = static_cast<double>(i->get());
    } else {
      wrong_type(f, node, where);
    }
    if (!range.contains(value)) out_of_range(f.name(), node_text(node), f.expected, where);
    access(c) = value;
  };
  f.text = [access](const TrainConfig& c) { return real_text(access(c)); };
  return f;
}

template <typename Access>
Field boolean(std::string section, std::string key, Access access) {
  Field f{std::move(section), std::move(key), Kind::boolean, "true or false", {}, {}};
  f.set = [f, access](TrainConfig& c, const toml::node& node, const std::string& where) {
    const auto* value = node.as_boolean();
    if (value == nullptr) wrong_type(f, node, where);
    access(c) = value->get();
  };
  f.text = [access](const TrainConfig& c) { return access(c) ? "true" : "false"; };
  return f;
}

// A string; one of `choices` when given, else any non-empty string.
template <typename Access>
Field string(std::string section, std::string key, Access access,
             std::vector<std::string> choices = {}) {
  const std::string expected = choices.empty()
                                   ? std::string("a non-empty string")
                                   : fmt::format("one of \"{}\"", fmt::join(choices, "\", \""));
  Field f{std::move(section), std::move(key), Kind::string, expected, {}, {}};
  f.set = [f, access, choices](TrainConfig& c, const toml::node& node, const std::string& where) {
    const auto* value = node.as_string();
    if (value == nullptr) wrong_type(f, node, where);
    const std::string& s = value->get();
    const bool ok = choices.empty() ? !s.empty() : std::ranges::find(choices, s) != choices.end();
    if (!ok) out_of_range(f.name(), node_text(node), f.expected, where);
    access(c) = s;
  };
  f.text = [access](const TrainConfig& c) { return quoted(access(c)); };
  return f;
}

template <typename Access>
Field integer_list(std::string section, std::string key, Access access, IntRange element) {
  const std::string expected =
      fmt::format("a list of 1 to {} entries, each {}", kMaxPatterns, element.text());
  Field f{std::move(section), std::move(key), Kind::integer_list, expected, {}, {}};
  f.set = [f, access, element](TrainConfig& c, const toml::node& node, const std::string& where) {
    const auto* array = node.as_array();
    if (array == nullptr) wrong_type(f, node, where);
    const auto count = static_cast<int64_t>(array->size());
    if (count < 1 || count > kMaxPatterns) {
      out_of_range(f.name(), node_text(node), f.expected, where);
    }
    std::vector<int64_t> values;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& item = *array->get(i);
      const std::string item_name = fmt::format("{}[{}]", f.name(), i);
      const auto* value = item.as_integer();
      if (value == nullptr) {
        fail("{}: {} = {} is a {}, expected {}", where, item_name, node_text(item),
             node_type_name(item), element.text());
      }
      if (!element.contains(value->get())) {
        out_of_range(item_name, node_text(item), element.text(), where);
      }
      values.push_back(value->get());
    }
    access(c) = std::move(values);
  };
  f.text = [access](const TrainConfig& c) {
    return fmt::format("[{}]", fmt::join(access(c), ", "));
  };
  return f;
}

template <typename S, typename T>
Member<S, T> in(S TrainConfig::*section, T S::*member) {
  return {section, member};
}

// Every field, in the order to_toml writes them. Top-level keys come first: in TOML a
// key after a [table] header belongs to that table.
const std::vector<Field>& fields() {
  using C = TrainConfig;
  static const std::vector<Field> all = [] {
    std::vector<Field> f;
    const auto seed = [](auto& c) -> auto& { return c.seed; };
    f.push_back(integer("", "seed", seed, {0, kMaxInt}));

    const auto m = [](auto member) { return in(&C::model, member); };
    f.push_back(
        integer("model", "vocab_size", m(&ModelSection::vocab_size), {kByteValues, kMaxVocab}));
    f.push_back(integer("model", "dim", m(&ModelSection::dim), {1, 65536}));
    f.push_back(integer("model", "layers", m(&ModelSection::layers), {1, 1024}));
    f.push_back(integer("model", "heads", m(&ModelSection::heads), {1, 1024}));
    f.push_back(integer("model", "kv_heads", m(&ModelSection::kv_heads), {0, 1024}));
    f.push_back(integer("model", "ffn_dim", m(&ModelSection::ffn_dim), {1, 1 << 20}));
    f.push_back(
        integer_list("model", "segment_lengths", m(&ModelSection::segment_lengths), {1, kMaxInt}));
    f.push_back(
        integer_list("model", "dilation_rates", m(&ModelSection::dilation_rates), {1, kMaxInt}));
    f.push_back(boolean("model", "causal", m(&ModelSection::causal)));
    f.push_back(string("model", "head_offsets", m(&ModelSection::head_offsets),
                       {"grouped", "interleaved"}));
    f.push_back(boolean("model", "use_xpos", m(&ModelSection::use_xpos)));
    f.push_back(
        real("model", "xpos_scale_base", m(&ModelSection::xpos_scale_base), {0, kInf, true}));
    f.push_back(boolean("model", "use_rel_pos_bias", m(&ModelSection::use_rel_pos_bias)));
    f.push_back(integer("model", "rel_pos_buckets", m(&ModelSection::rel_pos_buckets), {2, 4096}));
    f.push_back(integer("model", "rel_pos_max_distance", m(&ModelSection::rel_pos_max_distance),
                        {1, kMaxInt}));
    f.push_back(real("model", "dropout", m(&ModelSection::dropout), {0, 1, false, true}));
    f.push_back(real("model", "layer_norm_eps", m(&ModelSection::layer_norm_eps), {0, 1, true}));
    f.push_back(real("model", "init_std", m(&ModelSection::init_std), {0, kInf, true}));

    const auto d = [](auto member) { return in(&C::data, member); };
    f.push_back(string("data", "dir", d(&DataSection::dir)));
    f.push_back(integer("data", "seq_len", d(&DataSection::seq_len), {1, 1LL << 40}));
    f.push_back(integer("data", "batch_size", d(&DataSection::batch_size), {1, 1 << 20}));
    f.push_back(integer("data", "grad_accum", d(&DataSection::grad_accum), {1, 1 << 20}));

    const auto o = [](auto member) { return in(&C::optimizer, member); };
    f.push_back(real("optimizer", "lr", o(&OptimizerSection::lr), {0, 10, true}));
    f.push_back(real("optimizer", "min_lr", o(&OptimizerSection::min_lr), {0, 10}));
    f.push_back(real("optimizer", "beta1", o(&OptimizerSection::beta1), {0, 1, false, true}));
    f.push_back(real("optimizer", "beta2", o(&OptimizerSection::beta2), {0, 1, false, true}));
    f.push_back(real("optimizer", "eps", o(&OptimizerSection::eps), {0, 1, true}));
    f.push_back(real("optimizer", "weight_decay", o(&OptimizerSection::weight_decay), {0, 10}));
    f.push_back(real("optimizer", "grad_clip", o(&OptimizerSection::grad_clip), {0, kInf}));
    f.push_back(
        integer("optimizer", "warmup_steps", o(&OptimizerSection::warmup_steps), {0, kMaxInt}));
    f.push_back(integer("optimizer", "max_steps", o(&OptimizerSection::max_steps), {1, kMaxInt}));
    f.push_back(
        string("optimizer", "on_nonfinite", o(&OptimizerSection::on_nonfinite), {"stop", "skip"}));
    f.push_back(integer("optimizer", "max_skipped_steps", o(&OptimizerSection::max_skipped_steps),
                        {1, kMaxInt}));

    f.push_back(integer("parallel", "sp", in(&C::parallel, &ParallelSection::sp), {1, 65536}));

    const auto k = [](auto member) { return in(&C::checkpoint, member); };
    f.push_back(string("checkpoint", "dir", k(&CheckpointSection::dir)));
    f.push_back(integer("checkpoint", "every", k(&CheckpointSection::every), {0, kMaxInt}));
    f.push_back(integer("checkpoint", "keep_last", k(&CheckpointSection::keep_last), {1, 1000}));

    f.push_back(integer("eval", "every", in(&C::eval, &EvalSection::every), {0, kMaxInt}));
    f.push_back(integer("eval", "batches", in(&C::eval, &EvalSection::batches), {1, 1 << 20}));

    f.push_back(integer("log", "every", in(&C::log, &LogSection::every), {1, kMaxInt}));
    return f;
  }();
  return all;
}

const Field* find_field(std::string_view section, std::string_view key) {
  for (const Field& f : fields()) {
    if (f.section == section && f.key == key) return &f;
  }
  return nullptr;
}

std::vector<std::string> sections() {
  std::vector<std::string> names;
  for (const Field& f : fields()) {
    if (!f.section.empty() && std::ranges::find(names, f.section) == names.end()) {
      names.push_back(f.section);
    }
  }
  return names;
}

bool is_section(std::string_view name) {
  const std::vector<std::string> all = sections();
  return std::ranges::find(all, name) != all.end();
}

// "vocab_size, dim, layers, ...": the keys of one table ("" for the top level, where the
// tables themselves are listed as "[model]").
std::string valid_keys(std::string_view section) {
  std::vector<std::string> keys;
  for (const Field& f : fields()) {
    if (f.section == section) keys.push_back(f.key);
  }
  if (section.empty()) {
    for (const std::string& s : sections()) keys.push_back(fmt::format("[{}]", s));
  }
  return fmt::format("{}", fmt::join(keys, ", "));
}

[[noreturn]] void unknown_key(const std::string& where, std::string_view section,
                              std::string_view key) {
  if (section.empty()) {
    fail("{}: unknown key '{}' at the top level: valid are {}", where, key, valid_keys(""));
  }
  fail("{}: unknown key '{}.{}': the [{}] table's keys are {}", where, section, key, section,
       valid_keys(section));
}

std::string_view trim(std::string_view s) {
  const auto begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  const auto end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

TrainConfig from_table(const toml::table& root, std::string_view source) {
  TrainConfig config;
  for (auto&& [key_node, node] : root) {
    const std::string key(key_node.str());
    const std::string where = located(source, node);
    if (const Field* f = find_field("", key)) {
      f->set(config, node, where);
      continue;
    }
    if (!is_section(key)) unknown_key(where, "", key);
    const toml::table* table = node.as_table();
    LONGNET_CHECK(table != nullptr, "{}: '{}' is a {}, expected the table [{}] (keys: {})", where,
                  key, node_type_name(node), key, valid_keys(key));
    for (auto&& [sub_node, value] : *table) {
      const std::string sub(sub_node.str());
      const Field* f = find_field(key, sub);
      if (f == nullptr) unknown_key(located(source, value), key, sub);
      f->set(config, value, located(source, value));
    }
  }
  try {
    validate(config);
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
  return config;
}

}  // namespace

// ---- cross-field rules -----------------------------------------------------------------

void validate(const TrainConfig& c) {
  const ModelSection& m = c.model;
  LONGNET_CHECK(m.dim % m.heads == 0,
                "model.dim = {} is not a multiple of model.heads = {}: the heads split the model "
                "width evenly (e.g. dim = {})",
                m.dim, m.heads, (m.dim / m.heads + 1) * m.heads);
  LONGNET_CHECK(m.kv_heads == 0 || m.heads % m.kv_heads == 0,
                "model.kv_heads = {} does not divide model.heads = {}: each kv head serves "
                "heads / kv_heads query heads (0 means as many as heads)",
                m.kv_heads, m.heads);
  LONGNET_CHECK(m.segment_lengths.size() == m.dilation_rates.size(),
                "model.segment_lengths has {} entries but model.dilation_rates has {}: give one "
                "dilation rate per segment length",
                m.segment_lengths.size(), m.dilation_rates.size());
  LONGNET_CHECK(!m.segment_lengths.empty(),
                "model.segment_lengths is empty: give at least one attention pattern");
  for (std::size_t i = 0; i < m.segment_lengths.size(); ++i) {
    LONGNET_CHECK(m.segment_lengths[i] > 0 && m.dilation_rates[i] > 0,
                  "pattern {}: segment length {} and dilation rate {} must be positive", i,
                  m.segment_lengths[i], m.dilation_rates[i]);
    LONGNET_CHECK(m.dilation_rates[i] <= m.segment_lengths[i],
                  "model.dilation_rates[{}] = {} exceeds model.segment_lengths[{}] = {}: a "
                  "segment must hold at least one row per offset",
                  i, m.dilation_rates[i], i, m.segment_lengths[i]);
  }
  LONGNET_CHECK(!m.use_xpos || (m.dim / m.heads) % 2 == 0,
                "model.use_xpos needs an even head dimension, but dim / heads = {} / {} = {}: "
                "change dim or heads, or set use_xpos = false",
                m.dim, m.heads, m.dim / m.heads);
  // T5 bucketing gives the first buckets/2 distances a bucket each and spaces the rest
  // logarithmically up to max_distance, which must therefore lie beyond them.
  LONGNET_CHECK(!m.use_rel_pos_bias || m.rel_pos_max_distance > m.rel_pos_buckets / 2,
                "model.rel_pos_max_distance = {} must exceed model.rel_pos_buckets / 2 = {} (the "
                "distances with a bucket of their own)",
                m.rel_pos_max_distance, m.rel_pos_buckets / 2);
  LONGNET_CHECK(c.optimizer.min_lr <= c.optimizer.lr,
                "optimizer.min_lr = {} exceeds optimizer.lr = {}: the schedule decays from lr "
                "down to min_lr",
                c.optimizer.min_lr, c.optimizer.lr);
  LONGNET_CHECK(c.optimizer.warmup_steps <= c.optimizer.max_steps,
                "optimizer.warmup_steps = {} exceeds optimizer.max_steps = {}",
                c.optimizer.warmup_steps, c.optimizer.max_steps);
  LONGNET_CHECK(c.parallel.sp <= c.data.seq_len,
                "parallel.sp = {} exceeds data.seq_len = {}: every sequence-parallel rank needs "
                "at least one token",
                c.parallel.sp, c.data.seq_len);
  check_config_sizes(c);
}

// ---- entry points ------------------------------------------------------------------------

TrainConfig parse_train_config_string(std::string_view toml_text) {
  constexpr std::string_view kSource = "training configuration";
  toml::table root;
  try {
    root = toml::parse(toml_text, kSource);
  } catch (const toml::parse_error& e) {
    fail("{}: line {}, column {}: {}", kSource, e.source().begin.line, e.source().begin.column,
         e.description());
  }
  return from_table(root, kSource);
}

TrainConfig parse_train_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LONGNET_CHECK(in.good(), "cannot read training configuration '{}': {}", path,
                std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  toml::table root;
  try {
    root = toml::parse(text.str(), path);
  } catch (const toml::parse_error& e) {
    fail("{}:{}:{}: {}", path, e.source().begin.line, e.source().begin.column, e.description());
  }
  return from_table(root, path);
}

void apply_override(TrainConfig& config, std::string_view assignment) {
  const std::string where = fmt::format("--set {}", assignment);
  const auto equals = assignment.find('=');
  LONGNET_CHECK(equals != std::string_view::npos,
                "{}: expected section.key=value, e.g. --set optimizer.lr=3e-4", where);
  const std::string_view name = trim(assignment.substr(0, equals));
  const std::string_view value = trim(assignment.substr(equals + 1));
  const auto dot = name.find('.');
  const std::string_view section = dot == std::string_view::npos ? "" : name.substr(0, dot);
  const std::string_view key = dot == std::string_view::npos ? name : name.substr(dot + 1);
  if (!section.empty() && !is_section(section)) unknown_key(where, "", section);
  const Field* field = find_field(section, key);
  if (field == nullptr) unknown_key(where, section, key);

  // The value is read as TOML, so it meets the same checks as in a file; lists may drop
  // their brackets and strings their quotes on a command line.
  std::string text(value);
  if (field->kind == Kind::integer_list && !value.starts_with('[')) text = "[" + text + "]";
  if (field->kind == Kind::string && !value.starts_with('"') && !value.starts_with('\'')) {
    text = quoted(value);
  }
  toml::table parsed;
  try {
    parsed = toml::parse("value = " + text, where);
  } catch (const toml::parse_error& e) {
    fail("{}: '{}' is not a TOML value ({}); {} must be {}", where, value, e.description(),
         field->name(), field->expected);
  }
  field->set(config, *parsed.get("value"), where);  // checks first, then assigns
}

void apply_overrides(TrainConfig& config, std::span<const std::string> assignments) {
  TrainConfig changed = config;
  for (const std::string& assignment : assignments) apply_override(changed, assignment);
  try {
    validate(changed);
  } catch (const Error& e) {
    std::vector<std::string> flags;
    for (const std::string& a : assignments) flags.push_back(fmt::format("--set {}", a));
    fail("after {}: {}", fmt::join(flags, " "), e.what());
  }
  config = std::move(changed);
}

std::string to_toml(const TrainConfig& config) {
  std::string out = "# longnet training configuration (every key; see configs/tiny.toml)\n";
  std::string section = "";
  for (const Field& f : fields()) {
    if (f.section != section) {
      section = f.section;
      out += fmt::format("\n[{}]\n", section);
    }
    out += fmt::format("{} = {}\n", f.key, f.text(config));
  }
  return out;
}

std::string describe(const TrainConfig& c) {
  const ModelSection& m = c.model;
  const DataSection& d = c.data;
  const OptimizerSection& o = c.optimizer;
  std::string out = fmt::format("training configuration (seed {})\n", c.seed);
  out +=
      fmt::format("  model       vocab {}, dim {}, {} layers x {} heads (head dim {}{}), ffn {}\n",
                  m.vocab_size, m.dim, m.layers, m.heads, m.dim / m.heads,
                  m.kv_heads > 0 && m.kv_heads != m.heads ? fmt::format("; {} kv heads", m.kv_heads)
                                                          : std::string(),
                  m.ffn_dim);
  out += fmt::format("  attention   w = {} with r = {}, {}, {} head offsets\n",
                     fmt::join(m.segment_lengths, ","), fmt::join(m.dilation_rates, ","),
                     m.causal ? "causal" : "non-causal", m.head_offsets);
  out += fmt::format("  positions   xPos {}, relative position bias {}\n",
                     m.use_xpos ? fmt::format("on (scale base {})", m.xpos_scale_base) : "off",
                     m.use_rel_pos_bias ? fmt::format("on ({} buckets, max distance {})",
                                                      m.rel_pos_buckets, m.rel_pos_max_distance)
                                        : "off");
  out += fmt::format("  init        normal(0, {}), dropout {}, layer norm eps {}\n", m.init_std,
                     m.dropout, m.layer_norm_eps);
  out += fmt::format(
      "  data        {}: {} sequences of {} tokens x {} accumulation = {} tokens per step per "
      "data-parallel group\n",
      d.dir, d.batch_size, d.seq_len, d.grad_accum, d.batch_size * d.seq_len * d.grad_accum);
  out += fmt::format(
      "  optimizer   AdamW, lr {} -> {} (warm-up {} steps, cosine to step {}), betas ({}, {}), "
      "eps {}, weight decay {}, grad clip {}\n",
      o.lr, o.min_lr, o.warmup_steps, o.max_steps, o.beta1, o.beta2, o.eps, o.weight_decay,
      o.grad_clip > 0 ? fmt::format("{}", o.grad_clip) : std::string("off"));
  out += fmt::format("  parallel    {} sequence-parallel rank{} per data-parallel group\n",
                     c.parallel.sp, c.parallel.sp == 1 ? "" : "s");
  out += fmt::format("  checkpoints {}: {}, keeping the last {}\n", c.checkpoint.dir,
                     c.checkpoint.every > 0 ? fmt::format("every {} steps", c.checkpoint.every)
                                            : std::string("no periodic checkpoints"),
                     c.checkpoint.keep_last);
  out += fmt::format("  eval        {}\n",
                     c.eval.every > 0 ? fmt::format("every {} steps on {} validation batches",
                                                    c.eval.every, c.eval.batches)
                                      : std::string("off"));
  out += fmt::format("  log         every {} steps\n", c.log.every);
  return out;
}

}  // namespace longnet
