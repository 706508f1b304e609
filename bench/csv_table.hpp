// A small CSV reader for the measurements the cost model is validated against (the CSVs of
// `longnet bench scaling` and `longnet bench comm`). Every error names the file, the line
// and the column, so that a malformed measurement is found without a debugger.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace longnet::bench {

// A CSV file with a header line; quoted fields may hold commas ("2048 4096"). Every
// accessor's error names the file, line and column.
class CsvTable {
 public:
  static CsvTable read(const std::string& path);
  static CsvTable parse(const std::string& text, const std::string& name);

  std::size_t size() const { return rows_.size(); }
  bool has_column(std::string_view column) const;
  const std::string& text(std::size_t row, std::string_view column) const;
  double number(std::size_t row, std::string_view column) const;
  int64_t integer(std::size_t row, std::string_view column) const;
  std::vector<int64_t> integer_list(std::size_t row, std::string_view column) const;  // "1 2"
  // "FILE:LINE" of a row, for messages.
  std::string where(std::size_t row) const;

 private:
  std::size_t column_index(std::string_view column) const;
  std::string name_;
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<int64_t> lines_;  // 1-based line of each row
};

}  // namespace longnet::bench
