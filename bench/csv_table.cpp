// The CSV reader of the cost model's validation; bench/csv_table.hpp gives the format.
#include "bench/csv_table.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "runtime/error.hpp"

namespace longnet::bench {
namespace {

// Whether all of `text` (non-empty) is one number: from_chars stops at the first character
// it cannot read, and "12x" must be an error, not 12.
template <typename T>
bool parses_whole(std::string_view text, T& value) {
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  return !text.empty() && error == std::errc() && stop == end;
}

}  // namespace

CsvTable CsvTable::read(const std::string& path) {
  std::ifstream in(path);
  LONGNET_CHECK(in.good(), "cannot read '{}': check the path", path);
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

CsvTable CsvTable::parse(const std::string& text, const std::string& name) {
  CsvTable table;
  table.name_ = name;
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false, any = false;
  int64_t line = 1, record_line = 1;
  auto end_record = [&] {
    fields.push_back(field);
    field.clear();
    if (table.columns_.empty()) {
      table.columns_ = fields;
    } else if (fields.size() == table.columns_.size()) {
      table.rows_.push_back(fields);
      table.lines_.push_back(record_line);
    } else if (!(fields.size() == 1 && fields[0].empty())) {  // blank lines are skipped
      fail("{}:{}: {} fields where the header (line 1) has {} columns", name, record_line,
           fields.size(), table.columns_.size());
    }
    fields.clear();
    any = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (!any) record_line = line;
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    any = true;
    if (c == '"') {
      LONGNET_CHECK(field.empty(), "{}:{}: column {}: a quote inside an unquoted field", name, line,
                    fields.size() + 1);
      quoted = true;
    } else if (c == ',') {
      fields.push_back(field);
      field.clear();
    } else if (c == '\n') {
      end_record();
      ++line;
    } else if (c != '\r') {
      field += c;
    }
  }
  LONGNET_CHECK(!quoted, "{}:{}: column {}: a quoted field is never closed", name, record_line,
                fields.size() + 1);
  if (any) end_record();
  LONGNET_CHECK(!table.columns_.empty(), "{}: empty file: expected a header line", name);
  return table;
}

bool CsvTable::has_column(std::string_view column) const {
  return std::ranges::find(columns_, column) != columns_.end();
}

std::size_t CsvTable::column_index(std::string_view column) const {
  const auto it = std::ranges::find(columns_, column);
  LONGNET_CHECK(it != columns_.end(), "{}:1: no column '{}' in the header ({})", name_, column,
                fmt::join(columns_, ","));
  return static_cast<std::size_t>(it - columns_.begin());
}

std::string CsvTable::where(std::size_t row) const {
  return fmt::format("{}:{}", name_, lines_.at(row));
}

const std::string& CsvTable::text(std::size_t row, std::string_view column) const {
  return rows_.at(row)[column_index(column)];
}

double CsvTable::number(std::size_t row, std::string_view column) const {
  const std::string& cell = text(row, column);
  double value = 0;
  LONGNET_CHECK(parses_whole(cell, value) && std::isfinite(value),
                "{}: column '{}': '{}' is not a finite number", where(row), column, cell);
  return value;
}

int64_t CsvTable::integer(std::size_t row, std::string_view column) const {
  const std::string& cell = text(row, column);
  int64_t value = 0;
  LONGNET_CHECK(parses_whole(cell, value), "{}: column '{}': '{}' is not an integer", where(row),
                column, cell);
  return value;
}

std::vector<int64_t> CsvTable::integer_list(std::size_t row, std::string_view column) const {
  std::istringstream words(text(row, column));
  std::vector<int64_t> values;
  for (std::string word; words >> word;) {
    int64_t value = 0;
    LONGNET_CHECK(parses_whole(word, value),
                  "{}: column '{}': '{}' is not an integer in the list '{}'", where(row), column,
                  word, text(row, column));
    values.push_back(value);
  }
  LONGNET_CHECK(!values.empty(), "{}: column '{}': an empty list", where(row), column);
  return values;
}

}  // namespace longnet::bench
