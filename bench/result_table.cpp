#include "bench/result_table.hpp"

#include "runtime/error.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace longnet::bench {
namespace {

std::ofstream open_output(const std::string& path) {
  std::ofstream out(path);
  LONGNET_CHECK(out.good(), "cannot write '{}': check that its directory exists and is writable",
                path);
  return out;
}

// A finite number written whole: JSON has no inf or nan (from_chars reads both), so
// such a cell stays a string.
bool is_number(const std::string& text) {
  if (text.empty()) return false;
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && std::isfinite(value);
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// CSV quoting (RFC 4180): only cells holding a separator, a quote or a line break.
std::string csv_cell(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (const char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

void ResultTable::add_row(std::vector<std::string> cells) {
  LONGNET_CHECK(cells.size() == columns.size(), "{}: a row of {} cells for {} columns", benchmark,
                cells.size(), columns.size());
  rows.push_back(std::move(cells));
}

void write_csv(const ResultTable& table, const std::string& path) {
  std::ofstream out = open_output(path);
  for (std::size_t c = 0; c < table.columns.size(); ++c)
    out << (c ? "," : "") << csv_cell(table.columns[c]);
  out << '\n';
  for (const auto& row : table.rows) {
    for (std::size_t c = 0; c < row.size(); ++c) out << (c ? "," : "") << csv_cell(row[c]);
    out << '\n';
  }
}

void write_json(const ResultTable& table, const std::string& path) {
  std::ofstream out = open_output(path);
  out << "{\n  \"benchmark\": " << json_string(table.benchmark) << ",\n  \"info\": {";
  for (std::size_t i = 0; i < table.info.size(); ++i)
    out << (i ? ",\n    " : "\n    ") << json_string(table.info[i].first) << ": "
        << json_string(table.info[i].second);
  out << "\n  },\n  \"rows\": [";
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    out << (r ? ",\n    {" : "\n    {");
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      const std::string& cell = table.rows[r][c];
      const bool text =
          std::ranges::find(table.text_columns, table.columns[c]) != table.text_columns.end();
      out << (c ? ", " : "") << json_string(table.columns[c]) << ": "
          << (is_number(cell) && !text ? cell : json_string(cell));
    }
    out << '}';
  }
  out << "\n  ]\n}\n";
}

CLI::Validator writable_output_file() {
  return CLI::Validator(
      [](const std::string& path) -> std::string {
        namespace fs = std::filesystem;
        if (path.empty()) return "an empty path; give a file to write";
        const fs::path file(path);
        const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
        std::error_code error;
        if (fs::is_directory(file, error))
          return fmt::format("'{}' is a directory; give a file path inside it", path);
        if (!fs::is_directory(dir, error))
          return fmt::format("cannot write '{}': directory '{}' does not exist; create it first",
                             path, dir.string());
        if (::access(dir.c_str(), W_OK | X_OK) != 0)
          return fmt::format("cannot write '{}': directory '{}' is not writable", path,
                             dir.string());
        return {};
      },
      "FILE", "writable output file");
}

void add_output_options(CLI::App& command, std::string& csv, std::string& json) {
  command.add_option("--csv", csv, "also write the rows as CSV to this file")
      ->check(writable_output_file());
  command.add_option("--json", json, "also write the rows and the run's description as JSON")
      ->check(writable_output_file());
}

void write_outputs(const ResultTable& table, const std::string& csv, const std::string& json) {
  if (!csv.empty()) {
    write_csv(table, csv);
    fmt::print("# wrote {}\n", csv);
  }
  if (!json.empty()) {
    write_json(table, json);
    fmt::print("# wrote {}\n", json);
  }
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text.data();
}

}  // namespace longnet::bench
