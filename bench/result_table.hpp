// A benchmark's results as named columns, written as CSV and as JSON with the same rows.
//
// Cells are kept as the text the table prints (numbers already formatted to their
// precision), so the CSV, the JSON and the fixed-width table never disagree. In JSON a
// cell that reads whole as a number is written as a number, any other as a string; the
// run's description (`info`: host, date, command, configuration) goes beside the rows.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

namespace longnet::bench {

struct ResultTable {
  std::string benchmark{};  // "longnet bench scaling"
  std::vector<std::pair<std::string, std::string>> info{};
  std::vector<std::string> columns{};
  std::vector<std::vector<std::string>> rows{};
  // Columns that JSON keeps as strings even when a cell reads as a number (a list of
  // segment lengths that happens to hold one).
  std::vector<std::string> text_columns{};

  void add_row(std::vector<std::string> cells);  // as many cells as columns
};

void write_csv(const ResultTable& table, const std::string& path);
void write_json(const ResultTable& table, const std::string& path);

// Every benchmark's --csv FILE and --json FILE, refused at parsing (exit 2) unless
// writable_output_file accepts them, so a typo does not cost the whole measurement.
void add_output_options(CLI::App& command, std::string& csv, std::string& json);

// A CLI11 check for a file to be written after the work: its directory exists and is
// writable, and the path is not a directory. The message names the path and the fix.
CLI::Validator writable_output_file();
// Writes whichever of the two files was asked for, saying so on stdout ('# wrote ...').
void write_outputs(const ResultTable& table, const std::string& csv, const std::string& json);

// "2026-11-22T10:00:00Z"
std::string utc_now();

}  // namespace longnet::bench
