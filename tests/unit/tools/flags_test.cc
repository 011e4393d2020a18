// Size and flag parsing of the command-line tools.
#include <gtest/gtest.h>

#include "testing/test_util.h"
#include "tools/common/flags.h"

namespace llmflash::tools {
namespace {

using llmflash::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseByteSize, SuffixesAndPercent) {
  EXPECT_EQ(*ParseByteSize("123", 0), 123u);
  EXPECT_EQ(*ParseByteSize("64K", 0), 64u << 10);
  EXPECT_EQ(*ParseByteSize("64M", 0), 64u << 20);
  EXPECT_EQ(*ParseByteSize("1.5G", 0), 3ull << 29);
  EXPECT_EQ(*ParseByteSize("50%", 1000), 500u);
  EXPECT_EQ(*ParseByteSize("100%", 12345), 12345u);
}

TEST(ParseByteSize, RejectsGarbage) {
  for (const char* bad : {"", "abc", "-5", "12Q", "1e999", "5%%"}) {
    EXPECT_THAT(ParseByteSize(bad, 100).status(),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a size")))
        << bad;
  }
}

TEST(Flags, ParsesAndRejectsUnknown) {
  const char* argv[] = {"llmflash", "generate", "--model", "m", "--stats", "--window=3"};
  Flags f(6, const_cast<char**>(argv), 2, {"stats"});
  EXPECT_TRUE(f.Check({"model", "stats", "window"}).ok());
  EXPECT_EQ(f.Get("model"), "m");
  EXPECT_TRUE(f.Has("stats"));
  EXPECT_EQ(*f.GetInt("window", 1), 3);
  EXPECT_THAT(f.Check({"model"}), StatusIs(StatusCode::kInvalidArgument, HasSubstr("--stats")));
  const char* bad[] = {"llmflash", "generate", "--window", "x"};
  Flags g(4, const_cast<char**>(bad), 2);
  EXPECT_FALSE(g.GetInt("window", 1).ok());
}

// A list of numbers: every item a finite number, none empty; absent is empty.
TEST(Flags, ListsOfNumbers) {
  const char* argv[] = {"llmflash", "eval", "--fractions", "0.5,0.25,1e-1", "--a", "0.5,,1", "--b", "0.5,x",
                        "--c", "nan", "--d", ""};
  Flags f(12, const_cast<char**>(argv), 2);
  auto v = f.GetDoubles("fractions");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (std::vector<double>{0.5, 0.25, 0.1}));
  EXPECT_TRUE(f.GetDoubles("none")->empty());
  for (const char* bad : {"a", "b", "c", "d"}) {
    EXPECT_THAT(f.GetDoubles(bad).status(),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("numbers separated by commas"))) << bad;
  }
}

TEST(Flags, HelpAnywhereIsNotAFlagValue) {
  const char* argv[] = {"llmflash", "synth", "--arch", "opt", "--help"};
  Flags f(5, const_cast<char**>(argv), 2);
  EXPECT_TRUE(f.help());
  EXPECT_TRUE(f.Check({"arch"}).ok());
  EXPECT_EQ(f.Get("arch"), "opt");
  const char* h[] = {"llmflash", "synth", "-h"};
  EXPECT_TRUE(Flags(3, const_cast<char**>(h), 2).help());
  EXPECT_FALSE(Flags(4, const_cast<char**>(argv), 2).help());
  const char* stray[] = {"llmflash", "synth", "oops", "--help"};
  Flags g(4, const_cast<char**>(stray), 2);
  EXPECT_TRUE(g.help());
  EXPECT_THAT(g.Check({}), StatusIs(StatusCode::kInvalidArgument, HasSubstr("unexpected argument \"oops\"")));
}

}  // namespace
}  // namespace llmflash::tools
