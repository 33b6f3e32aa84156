// Tests parse_telnet_line (verb, positional words, options, quoting, errors with columns) and
// TelnetLineBuffer (IAC removal, line ends, the length cap, lines split across reads).
#include "allocator/telnet_command.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "allocator/telnet_line_buffer.h"

namespace confab::allocator {
namespace {

using namespace std::string_literals;

TelnetCommand parse_ok(std::string_view line) {
  auto parsed = parse_telnet_line(line);
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? *parsed : TelnetCommand{};
}

ApiError parse_error(std::string_view line) {
  auto parsed = parse_telnet_line(line);
  EXPECT_FALSE(parsed.ok());
  return parsed.ok() ? ApiError{} : parsed.error();
}

using Options = std::vector<std::pair<std::string, std::string>>;

TEST(TelnetCommandTest, SplitsVerbPositionalAndOptionsInOrder) {
  const TelnetCommand c = parse_ok("join 17 audio=opus/111@127.0.0.1:5004 video=h264/96");
  EXPECT_EQ(c.verb, "join");
  EXPECT_EQ(c.positional, std::vector<std::string>{"17"});
  EXPECT_EQ(c.options, (Options{{"audio", "opus/111@127.0.0.1:5004"}, {"video", "h264/96"}}));
  EXPECT_EQ(c.option("video"), "h264/96");
  EXPECT_FALSE(c.option("name").has_value());
}

TEST(TelnetCommandTest, LowerCasesTheVerbOnly) {
  const TelnetCommand c = parse_ok("CrEaTe Weekly name=MiXed");
  EXPECT_EQ(c.verb, "create");
  EXPECT_EQ(c.positional, std::vector<std::string>{"Weekly"});
  EXPECT_EQ(c.option("name"), "MiXed");
}

TEST(TelnetCommandTest, QuotedValuesKeepSpacesAndEscapes) {
  const TelnetCommand c = parse_ok(R"(create name="Weekly sync" layout=2x2)");
  EXPECT_EQ(c.option("name"), "Weekly sync");
  EXPECT_EQ(c.option("layout"), "2x2");

  // \" and \\ inside quotes; a tab inside quotes is kept.
  EXPECT_EQ(parse_ok(R"(say text="a \"b\" \\ c")").option("text"), R"(a "b" \ c)");
  EXPECT_EQ(parse_ok("say text=\"a\tb\"").option("text"), "a\tb");
  // Segments concatenate; a backslash outside quotes is an ordinary byte.
  EXPECT_EQ(parse_ok(R"(say a"b c"d)").positional, std::vector<std::string>{"ab cd"});
  EXPECT_EQ(parse_ok(R"(say C:\dir)").positional, std::vector<std::string>{R"(C:\dir)"});
  // A quoted '=' makes a positional word; empty values and empty quoted words are allowed.
  EXPECT_EQ(parse_ok(R"(say "a=b")").positional, std::vector<std::string>{"a=b"});
  EXPECT_TRUE(parse_ok(R"(say "a=b")").options.empty());
  EXPECT_EQ(parse_ok("set name=").option("name"), "");
  EXPECT_EQ(parse_ok(R"(set name="")").option("name"), "");
  EXPECT_EQ(parse_ok(R"(set "")").positional, std::vector<std::string>{""});
  // Only the first unquoted '=' splits.
  EXPECT_EQ(parse_ok("set expr=a=b").option("expr"), "a=b");
}

TEST(TelnetCommandTest, BlanksTabsAndTrailingCr) {
  const TelnetCommand c = parse_ok(" \t list\t\t 3  x=1 \r");
  EXPECT_EQ(c.verb, "list");
  EXPECT_EQ(c.positional, std::vector<std::string>{"3"});
  EXPECT_EQ(c.option("x"), "1");
  for (const char* blank : {"", "\r", "   ", "\t \t", " \r"}) {
    SCOPED_TRACE(blank);
    const TelnetCommand empty = parse_ok(blank);
    EXPECT_TRUE(empty.verb.empty());
    EXPECT_TRUE(empty.positional.empty());
    EXPECT_TRUE(empty.options.empty());
  }
}

TEST(TelnetCommandTest, BytesAboveAsciiPassThrough) {
  // UTF-8 "Café" and a lone 0xFF byte (the line buffer has already removed telnet commands).
  const TelnetCommand c = parse_ok("rename name=\"Caf\xC3\xA9\" \xFF");
  EXPECT_EQ(c.option("name"), "Caf\xC3\xA9");
  EXPECT_EQ(c.positional, std::vector<std::string>{"\xFF"});
}

TEST(TelnetCommandTest, UnterminatedQuoteNamesTheOpeningColumn) {
  ApiError e = parse_error(R"(create name="Weekly sync)");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "BAD_LINE");
  EXPECT_EQ(e.message, "unterminated quote at column 13");
  // An escaped quote does not close; a trailing backslash leaves it open.
  EXPECT_EQ(parse_error(R"(x "a\")").message, "unterminated quote at column 3");
  EXPECT_EQ(parse_error(R"(x "a\)").message, "unterminated quote at column 3");
  EXPECT_EQ(parse_error("\"").message, "unterminated quote at column 1");
}

TEST(TelnetCommandTest, RejectsControlCharactersWithTheirColumn) {
  EXPECT_EQ(parse_error(std::string("ab\x01") + "c").message, "control character 0x01 at column 3");
  EXPECT_EQ(parse_error(std::string("a\0b", 3)).message, "control character 0x00 at column 2");
  EXPECT_EQ(parse_error("say \"x\x1b[2J\"").message, "control character 0x1B at column 7");
  EXPECT_EQ(parse_error("del\x7f").message, "control character 0x7F at column 4");
  // Only a trailing CR is dropped; one in the middle is a control character.
  EXPECT_EQ(parse_error("a\rb").message, "control character 0x0D at column 2");
  EXPECT_EQ(parse_error("a\n").message, "control character 0x0A at column 2");
}

TEST(TelnetCommandTest, RejectsBadKeysAndDuplicates) {
  EXPECT_EQ(parse_error("create Name=x").message, "bad option key (want [a-z_][a-z0-9_]*) at column 8");
  for (const char* bad : {"x =v", "x 1a=v", "x a-b=v", "x a.b=v", "x \xC3\xA9=v"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(parse_error(bad).message, "bad option key (want [a-z_][a-z0-9_]*) at column 3");
  }
  EXPECT_EQ(parse_ok("x _a9_=1 b2=2").options, (Options{{"_a9_", "1"}, {"b2", "2"}}));
  EXPECT_EQ(parse_error("create name=a layout=2x2 name=b").message, "duplicate option name at column 26");
}

TEST(TelnetCommandTest, RejectsAnOptionOrEmptyWordAsVerb) {
  EXPECT_EQ(parse_error("name=x").message, "expected a verb before key=value at column 1");
  EXPECT_EQ(parse_error("  \"\" x").message, "empty verb at column 3");
  EXPECT_EQ(parse_error(R"(x "a\n")").message, "bad escape (only \\\" and \\\\ inside quotes) at column 5");
}

TEST(TelnetCommandTest, AllowsThirtyTwoWordsAndNoMore) {
  std::string line = "verb";
  for (int i = 1; i < 32; ++i) line += " w";
  EXPECT_EQ(parse_ok(line).positional.size(), 31u);
  // The 33rd word starts at column 4 + 31 * 2 + 2 = 68.
  EXPECT_EQ(parse_error(line + " w").message, "more than 32 words at column 68");
  EXPECT_TRUE(parse_ok(line + "   ").positional.size() == 31u);
}

// ---- TelnetLineBuffer ----

std::vector<TelnetInput> feed_all(TelnetLineBuffer& buffer, std::string_view bytes) {
  std::vector<TelnetInput> out;
  buffer.feed(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), &out);
  return out;
}

std::vector<std::string> lines_of(const std::vector<TelnetInput>& inputs) {
  std::vector<std::string> lines;
  for (const TelnetInput& in : inputs) lines.push_back(in.kind == TelnetInput::Kind::kLine ? in.line : "<too long>");
  return lines;
}

TEST(TelnetLineBufferTest, SplitsOnEveryLineEnd) {
  TelnetLineBuffer buffer(100);
  // CR LF, LF alone, CR NUL (RFC 854's bare CR), CR alone; the partial "tail" waits.
  const std::string bytes = "a\r\nb\nc\r\0d\re\r\n\ntail"s;
  EXPECT_EQ(lines_of(feed_all(buffer, bytes)), (std::vector<std::string>{"a", "b", "c", "d", "e", ""}));
  EXPECT_EQ(buffer.pending(), 4u);
  EXPECT_EQ(lines_of(feed_all(buffer, "!\r")), std::vector<std::string>{"tail!"});
  // The LF completing that CR arrives in the next read and ends nothing.
  EXPECT_TRUE(feed_all(buffer, "\n").empty());
}

TEST(TelnetLineBufferTest, AssemblesALineSplitByteByByte) {
  TelnetLineBuffer buffer(100);
  const std::string line = "create name=\"x y\"\r\n";
  std::vector<std::string> got;
  for (char c : line) {
    for (auto& s : lines_of(feed_all(buffer, std::string_view(&c, 1)))) got.push_back(s);
  }
  EXPECT_EQ(got, std::vector<std::string>{"create name=\"x y\""});
}

TEST(TelnetLineBufferTest, RemovesNegotiation) {
  TelnetLineBuffer buffer(100);
  const std::string bytes =
      "\xFF\xFD\x01"                          // IAC DO ECHO
      "\xFF\xFB\x03"                          // IAC WILL SUPPRESS-GO-AHEAD
      "\xFF\xFA\x1F\x00\x50\x00\x18\xFF\xF0"  // IAC SB NAWS 80x24 IAC SE (RFC 1073)
      "li\xFF\xF1st\r\n"                      // IAC NOP inside a word
      "\xFF\xFF\n"s;                          // IAC IAC: one data byte 255
  EXPECT_EQ(lines_of(feed_all(buffer, bytes)),
            (std::vector<std::string>{"list", "\xFF"}));
  // A line made of negotiation only is no line at all; split mid-sequence it is still removed.
  EXPECT_TRUE(feed_all(buffer, "\xFF").empty());
  EXPECT_TRUE(feed_all(buffer, "\xFE").empty());
  EXPECT_EQ(lines_of(feed_all(buffer, "\x22ok\n")), std::vector<std::string>{"ok"});
  // IAC IAC inside a subnegotiation does not end it.
  EXPECT_EQ(lines_of(feed_all(buffer, "\xFF\xFA\x18\xFF\xFFx\xFF\xF0y\n")), std::vector<std::string>{"y"});
}

TEST(TelnetLineBufferTest, GivesUpOnASubnegotiationThatNeverEnds) {
  TelnetLineBuffer buffer(100);
  EXPECT_TRUE(feed_all(buffer, "\xFF\xFA" + std::string(1024, 'z')).empty());
  // Past 1024 bytes the buffer reads data again.
  EXPECT_EQ(lines_of(feed_all(buffer, "z\nok\n")), (std::vector<std::string>{"", "ok"}));
}

TEST(TelnetLineBufferTest, CapsLineLengthOncePerLine) {
  TelnetLineBuffer buffer(8);
  EXPECT_EQ(lines_of(feed_all(buffer, "12345678\n")), std::vector<std::string>{"12345678"});  // exactly the cap
  // Nine bytes: reported at once, before the line ends; the rest of it, however long, is dropped.
  EXPECT_EQ(lines_of(feed_all(buffer, "123456789")), std::vector<std::string>{"<too long>"});
  EXPECT_TRUE(feed_all(buffer, std::string(10000, 'x')).empty());
  EXPECT_EQ(buffer.pending(), 0u);
  EXPECT_EQ(lines_of(feed_all(buffer, "y\r\nnext\n")), std::vector<std::string>{"next"});
}

}  // namespace
}  // namespace confab::allocator
