// confab-directory: edits and queries the call router's directory (users, IM/SIP/E.164 aliases).
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "router/directory.h"

namespace {

using confab::router::Alias;
using confab::router::AliasKind;
using confab::router::Directory;
using confab::router::DirectoryError;
using confab::router::DirectoryUser;

// Exit codes: scripts tell a refused edit from a broken database or a typo.
constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;   // duplicate, unknown user or alias, malformed address
constexpr int kExitUsage = 2;     // bad command line
constexpr int kExitStorage = 3;   // the database cannot be opened, read or written

constexpr std::array kKinds = {AliasKind::kIm, AliasKind::kSip, AliasKind::kE164};

int report(const DirectoryError& error) {
  std::cerr << "confab-directory: " << error.message << "\n";
  return error.code == DirectoryError::Code::kStorage ? kExitStorage : kExitRefused;
}

std::string aliases_of(const DirectoryUser& user, AliasKind kind) {
  std::string out;
  for (const Alias& a : user.aliases) {
    if (a.kind == kind) out += (out.empty() ? "" : ", ") + a.value;
  }
  return out;
}

void print_table(const std::vector<DirectoryUser>& users) {
  std::vector<std::array<std::string, 5>> rows = {{"NAME", "DISPLAY", "IM", "SIP", "E164"}};
  for (const DirectoryUser& u : users) {
    rows.push_back({u.name, u.display_name, aliases_of(u, AliasKind::kIm), aliases_of(u, AliasKind::kSip),
                    aliases_of(u, AliasKind::kE164)});
  }
  std::array<size_t, 5> width{};
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

void print_user(const DirectoryUser& user) {
  std::cout << "name: " << user.name << "\n";
  std::cout << "display: " << user.display_name << "\n";
  for (AliasKind kind : kKinds) {
    for (const Alias& a : user.aliases) {
      if (a.kind == kind) std::cout << confab::router::alias_kind_name(kind) << ": " << a.value << "\n";
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Log lines (schema created, errors) go to stderr: stdout carries only what was asked for.
  spdlog::set_default_logger(spdlog::stderr_color_mt("confab-directory"));
  spdlog::set_level(spdlog::level::warn);

  CLI::App app{"confab-directory: edit and query the call router's directory of users and their IM addresses, "
               "SIP URIs and E.164 numbers."};
  app.require_subcommand(1);
  std::string db_path = "confab-directory.db";
  app.add_option("--db", db_path, "the SQLite database file (created if missing)")
      ->envname("CONFAB_DIRECTORY_DB")
      ->capture_default_str();

  std::string name, display, kind_text, value, address;
  std::vector<std::string> ims, sips, e164s;

  CLI::App* add_user = app.add_subcommand("add-user", "add a user with its aliases (all or nothing)");
  add_user->add_option("name", name, "user name: 1-64 of A-Z a-z 0-9 . _ -")->required();
  add_user->add_option("--display", display, "display name");
  add_user->add_option("--im", ims, "IM address (bare JID), repeatable");
  add_user->add_option("--sip", sips, "SIP URI, repeatable");
  add_user->add_option("--e164", e164s, "E.164 number (+digits), repeatable");

  CLI::App* remove_user = app.add_subcommand("remove-user", "remove a user and its aliases");
  remove_user->add_option("name", name, "user name")->required();

  CLI::App* add_alias = app.add_subcommand("add-alias", "add an alias to a user");
  add_alias->add_option("name", name, "user name")->required();
  add_alias->add_option("kind", kind_text, "im | sip | e164")->required()->check(CLI::IsMember({"im", "sip", "e164"}));
  add_alias->add_option("value", value, "the address")->required();

  CLI::App* remove_alias = app.add_subcommand("remove-alias", "remove an alias (any equivalent spelling)");
  remove_alias->add_option("value", value, "the address")->required();

  CLI::App* list = app.add_subcommand("list", "every user and its aliases, as a table");

  CLI::App* show = app.add_subcommand("show", "one user, by name or by any of its addresses");
  show->add_option("who", address, "user name or address")->required();

  CLI::App* route = app.add_subcommand("route", "what the router rings for a dialled address");
  route->add_option("address", address, "the dialled address")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  auto opened = Directory::open(db_path);
  if (!opened) return report(opened.error());
  Directory& directory = **opened;

  if (add_user->parsed()) {
    DirectoryUser user{name, display, {}};
    for (const auto& [kind, values] : {std::pair{AliasKind::kIm, &ims}, std::pair{AliasKind::kSip, &sips},
                                       std::pair{AliasKind::kE164, &e164s}}) {
      for (const std::string& v : *values) user.aliases.push_back(Alias{kind, v});
    }
    auto done = directory.add_user(user);
    return done ? kExitOk : report(done.error());
  }
  if (remove_user->parsed()) {
    auto done = directory.remove_user(name);
    return done ? kExitOk : report(done.error());
  }
  if (add_alias->parsed()) {
    auto done = directory.add_alias(name, Alias{*confab::router::parse_alias_kind(kind_text), value});
    return done ? kExitOk : report(done.error());
  }
  if (remove_alias->parsed()) {
    auto done = directory.remove_alias(value);
    return done ? kExitOk : report(done.error());
  }
  if (list->parsed()) {
    auto users = directory.list();
    if (!users) return report(users.error());
    print_table(*users);
    return kExitOk;
  }
  if (show->parsed()) {
    auto user = directory.find(address);
    if (!user) return report(user.error());
    if (!*user)
      return report(DirectoryError{DirectoryError::Code::kNotFound, "no user or alias matches \"" + address + "\""});
    print_user(**user);
    return kExitOk;
  }
  if (route->parsed()) {
    // route() hides database errors from the router (it rings the address as dialled); here they show.
    auto user = directory.find(address);
    if (!user) return report(user.error());
    std::cout << directory.route(address) << "\n";
    return kExitOk;
  }
  return kExitUsage;
}
