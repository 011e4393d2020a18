// The llmflash CLI as a user runs it: exact stdout, stats on stderr, errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "testing/test_util.h"

namespace llmflash {
namespace {

using ::testing::HasSubstr;

struct Result {
  int exit_code;
  std::string out;
};

// Runs a shell command, capturing stdout (stderr goes to `err_file` if set).
Result RunCli(const std::string& args, const std::string& err_file = "/dev/null") {
  std::string cmd = std::string(LLMFLASH_CLI_PATH) + " " + args + " 2>" + err_file;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(Cli, GeneratePrintsPromptThenTextExactly) {
  auto golden = nlohmann::json::parse(
      testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/stories260K_golden.json"));
  const auto& c = golden["cases"][1];  // "Once upon a time"
  std::string prompt = c["prompt"];
  size_t n = c["generated_ids"].size();
  Result r = RunCli("generate --model " + testing::Stories260KModel() + " --prompt '" + prompt +
                 "' --max-tokens " + std::to_string(n) + " --dram-budget 140%");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, prompt + c["text"].get<std::string>() + "\n");
}

TEST(Cli, StatsGoToStderr) {
  testing::TempDir tmp;
  Result r = RunCli("generate --model " + testing::Stories260KModel() +
                     " --prompt Lily --max-tokens 5 --stats",
                 tmp.File("err"));
  EXPECT_EQ(r.exit_code, 0);
  std::string err = testing::ReadFile(tmp.File("err"));
  EXPECT_NE(err.find("io_ms"), std::string::npos) << err;
  EXPECT_NE(err.find("io_uring (O_DIRECT)"), std::string::npos) << err;
  EXPECT_EQ(r.out.find("io_ms"), std::string::npos);
}

// The prompt in micro-batches or one step per token prints the same text;
// --stats says what the prompt and each turn ran; --stop ends it early.
TEST(Cli, PrefillModesAgreeAndStatsShowThePrompt) {
  testing::TempDir tmp;
  const std::string base = "generate --model " + testing::Stories260KModel() +
                           " --prompt 'Once upon a time, there was a little girl named Lily. She' --max-tokens 30";
  Result batch = RunCli(base + " --prefill batch --prefill-batch 8 --stats", tmp.File("err"));
  ASSERT_EQ(batch.exit_code, 0);
  const std::string err = testing::ReadFile(tmp.File("err"));
  EXPECT_NE(err.find("prompt: 1"), std::string::npos) << err;  // "prompt: N tokens in ..."
  EXPECT_NE(err.find("turn 0: context 0 -> "), std::string::npos) << err;
  EXPECT_NE(err.find("first token after"), std::string::npos) << err;
  Result token = RunCli(base + " --prefill token");
  ASSERT_EQ(token.exit_code, 0);
  EXPECT_EQ(batch.out, token.out);
  const size_t cut = batch.out.find(" She", 10) + 4;  // the first word generated after the prompt
  const std::string word = batch.out.substr(cut, batch.out.find(' ', cut + 1) - cut);
  Result stopped = RunCli(base + " --stop '" + word + "'");
  ASSERT_EQ(stopped.exit_code, 0);
  EXPECT_EQ(stopped.out, batch.out.substr(0, cut) + "\n") << "stop at \"" << word << "\"";
  EXPECT_EQ(RunCli(base + " --prefill sometimes").exit_code, 1);
  EXPECT_EQ(RunCli(base + " --prefill-batch -1").exit_code, 1);
}

TEST(Cli, ErrorsAreOneClearLineAndNonZero) {
  testing::TempDir tmp;
  Result r = RunCli("generate --model /nonexistent --prompt x", tmp.File("err"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(testing::ReadFile(tmp.File("err")),
            "llmflash: NotFound: /nonexistent/manifest.json: no such file\n");
  EXPECT_EQ(RunCli("generate --model m --bogus 1").exit_code, 1);
  EXPECT_EQ(RunCli("frobnicate").exit_code, 2);
  EXPECT_EQ(RunCli("generate --model " + testing::Stories260KModel() + " --dram-budget 1K").exit_code, 1);
}

TEST(Cli, HelpPrintsTheCommandsUsage) {
  Result r = RunCli("synth --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("--arch opt|llama"));
  EXPECT_THAT(r.out, HasSubstr("[--activation-sparsity 0.9]"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("--token-ids")));  // only synth's lines
  r = RunCli("convert -h");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("convert a Hugging Face checkpoint"));
  EXPECT_THAT(r.out, HasSubstr("convert a llama2.c checkpoint"));
  r = RunCli("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("calibrate"));
}

TEST(Cli, CalibrateWritesAProfileThatInspectPlansWith) {
  testing::TempDir tmp;
  Result r = RunCli("calibrate --quick --size 8M --threads 1 --output " + tmp.File("device.json"),
                    tmp.File("err"));
  ASSERT_EQ(r.exit_code, 0) << testing::ReadFile(tmp.File("err"));
  EXPECT_NE(testing::ReadFile(tmp.File("err")).find("queue depth 64"), std::string::npos);
  auto j = nlohmann::json::parse(testing::ReadFile(tmp.File("device.json")));
  EXPECT_EQ(j["format"], "llmflash-device-profile");
  r = RunCli("inspect --model " + testing::Stories260KModel() + " --dram-budget 140% --device-profile " +
             tmp.File("device.json"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("device profile   " + tmp.File("device.json")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("predicted "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("window k = "), std::string::npos) << r.out;
  EXPECT_THAT(r.out, HasSubstr("KV cache: "));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("MiB \\(f16, [0-9.]+ KiB per token"));
  // q8_0 needs whole blocks per head; stories260K's heads are 8 wide.
  r = RunCli("inspect --model " + testing::Stories260KModel() + " --kv-cache q8_0", tmp.File("err"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(testing::ReadFile(tmp.File("err")), HasSubstr("head_dim a multiple of 32; this model's is 8"));
  // A profile that is not one is an error naming it.
  std::string bad = tmp.File("bad.json");
  FILE* f = std::fopen(bad.c_str(), "w");
  std::fputs("{\"format\": 1}", f);
  std::fclose(f);
  r = RunCli("inspect --model " + testing::Stories260KModel() + " --device-profile " + bad, tmp.File("err"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(testing::ReadFile(tmp.File("err")).find("bad.json"), std::string::npos);
}

TEST(Cli, ConvertThenVerify) {
  testing::TempDir tmp;
  Result r = RunCli("convert --input " + testing::Stories260KBin() + " --tokenizer " +
                 testing::Stories260KTokenizer() + " --output " + tmp.File("m"));
  ASSERT_EQ(r.exit_code, 0);
  r = RunCli("verify --model " + tmp.File("m"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("OK"), std::string::npos);
  EXPECT_THAT(r.out, HasSubstr("FFN records f32"));
}

// train-predictor and eval as a user runs them inside a budget: progress on
// stderr, the budget it ran within, a stored predictor eval then measures;
// a budget too small for the model is one clear error.
TEST(Cli, TrainPredictorAndEvalWithinABudget) {
  testing::TempDir tmp;
  const std::string m = tmp.File("m");
  ASSERT_EQ(RunCli("convert --input " + testing::Stories260KBin() + " --tokenizer " +
                   testing::Stories260KTokenizer() + " --output " + m).exit_code, 0);
  Result r = RunCli("train-predictor --model " + m + " --self-generate 64 --rank 32 --activation-sparsity 0.45"
                    " --dram-budget 90% --max-context 128", tmp.File("err"));
  const std::string err = testing::ReadFile(tmp.File("err"));
  ASSERT_EQ(r.exit_code, 0) << err;
  EXPECT_THAT(r.out, HasSubstr("stored predictor (svd)"));
  EXPECT_THAT(err, HasSubstr("self-generating: 16 of 64 tokens"));
  EXPECT_THAT(err, ::testing::ContainsRegex("running the dense model over 6[0-9] tokens within [0-9]+ MiB"));
  EXPECT_THAT(err, HasSubstr("layer  4: rank 32"));
  r = RunCli("inspect --model " + m);
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, ::testing::ContainsRegex("predictor +svd, rank up to 32, held as f32; on held-out "
                                              "calibration rows: recall 0\\.99[0-9]"));
  r = RunCli("eval --model " + m + " --text " LLMFLASH_TEST_SOURCE_DIR "/testdata/heldout_stories.txt"
             " --tokens 100 --dram-budget 130% --max-context 128");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("100 positions"));
  EXPECT_THAT(r.out, HasSubstr("greedy agreement"));
  // The curve: a row per fraction asked for, in the table and the JSON.
  r = RunCli("eval --model " + m + " --text " LLMFLASH_TEST_SOURCE_DIR "/testdata/heldout_stories.txt"
             " --tokens 60 --fractions 0.5,0.25 --json " + tmp.File("eval.json"), tmp.File("err"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_THAT(testing::ReadFile(tmp.File("err")), HasSubstr("eval: sparse pass, 25% predicted"));
  EXPECT_THAT(testing::ReadFile(tmp.File("err")), HasSubstr("eval: 48 of 60 positions"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("\n +50\\.0% +[0-9.]+% +[0-9.]+% "));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("\n +25\\.0% +[0-9.]+% +[0-9.]+% "));
  auto j = nlohmann::json::parse(testing::ReadFile(tmp.File("eval.json")));
  ASSERT_EQ(j["curve"].size(), 2u);
  EXPECT_EQ(j["curve"][1]["predicted_fraction"].get<double>(), 0.25);
  EXPECT_NEAR(j["curve"][1]["computed_fraction"].get<double>(), 0.25, 0.05);
  EXPECT_EQ(j["curve"][0]["bytes_read_per_token"].size(), 8u);
  for (const char* bad : {"0.5,x", "1.5", "0", ""}) {
    r = RunCli("eval --model " + m + " --text " LLMFLASH_TEST_SOURCE_DIR "/testdata/heldout_stories.txt"
               " --tokens 20 --fractions '" + std::string(bad) + "'", tmp.File("err"));
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_THAT(testing::ReadFile(tmp.File("err")), HasSubstr("fraction")) << bad;
  }
  r = RunCli("train-predictor --model " + m + " --self-generate 50 --dram-budget 1000", tmp.File("err"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(testing::ReadFile(tmp.File("err")), HasSubstr("DRAM budget of"));
  // auto: a method per layer, counted by inspect; an unknown one is refused.
  r = RunCli("train-predictor --model " + m + " --self-generate 64 --rank 32 --method auto", tmp.File("err"));
  ASSERT_EQ(r.exit_code, 0) << testing::ReadFile(tmp.File("err"));
  EXPECT_THAT(testing::ReadFile(tmp.File("err")), ::testing::ContainsRegex("layer  4: rank 32, .* \\((svd|trained)\\)"));
  r = RunCli("inspect --model " + m);
  EXPECT_THAT(r.out, ::testing::ContainsRegex("predictor +auto \\(svd in [0-5] layers, trained in [0-5]\\)"));
  r = RunCli("train-predictor --model " + m + " --self-generate 64 --method lowrank", tmp.File("err"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(testing::ReadFile(tmp.File("err")), HasSubstr("unknown predictor method \"lowrank\""));
}

// A mixed conversion (q4_0 FFN, q8_0 attention, embeddings following) is
// what verify and inspect then report; an unknown type is refused naming the
// choices.
TEST(Cli, ConvertQuantizedMixAndInspectShowsTheTypes) {
  testing::TempDir tmp;
  Result r = RunCli("convert --input " + testing::Stories260KBin() + " --tokenizer " +
                    testing::Stories260KTokenizer() + " --output " + tmp.File("m") +
                    " --dtype q8_0 --ffn-dtype q4_0", tmp.File("err"));
  ASSERT_EQ(r.exit_code, 0) << testing::ReadFile(tmp.File("err"));
  r = RunCli("verify --model " + tmp.File("m"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("FFN records q4_0"));
  EXPECT_THAT(r.out, HasSubstr("resident f32 "));   // norms
  EXPECT_THAT(r.out, HasSubstr(", q8_0 "));        // matrices and embeddings
  r = RunCli("inspect --model " + tmp.File("m"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("llama (q8_0)"));
  EXPECT_THAT(r.out, HasSubstr("FFN records q4_0"));
  r = RunCli("generate --model " + tmp.File("m") + " --prompt \"Once upon\" --max-tokens 8 --temperature 0");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("Once upon"));
  r = RunCli("convert --input " + testing::Stories260KBin() + " --tokenizer " + testing::Stories260KTokenizer() +
                 " --output " + tmp.File("n") + " --ffn-dtype q5_k", tmp.File("err"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(testing::ReadFile(tmp.File("err")), HasSubstr("ffn dtype \"q5_k\" is not f32, f16, bf16, q8_0 or q4_0"));
}

// The Done-when route: `llmflash tokenize --tokenizer DIR` over llama.cpp's
// test tables prints, text by text, the ids Hugging Face gives.
TEST(Cli, TokenizeMatchesHuggingFaceOnTheSharedTables) {
  const std::pair<const char*, const char*> tables[] = {
      {"gpt-2", "gpt2"}, {"llama-spm", "llama2"}, {"llama-bpe", "llama3"}, {"qwen2", "qwen3"}, {"gemma-4", "gemma3"}};
  for (const auto& [table, tokenizer] : tables) {
    const std::string base = testing::SharedDir() + "/tokenizers/tests/" + table;
    Result r = RunCli("tokenize --tokenizer " + testing::TokenizerDir(tokenizer) + " --text-file " + base +
                      ".inp --separator '\\n__ggml_vocab_test__\\n'");
    ASSERT_EQ(r.exit_code, 0) << table;
    std::stringstream got(r.out), want(testing::ReadFile(base + ".out"));
    std::string g, w;
    int lines = 0;
    while (std::getline(want, w)) {
      ASSERT_TRUE(static_cast<bool>(std::getline(got, g))) << table << ": output ends at line " << lines;
      if (!w.empty() && w[0] == ' ') w.erase(0, 1);  // the tables start each line with a space
      EXPECT_EQ(g, w) << table << " line " << lines;
      ++lines;
    }
    EXPECT_EQ(lines, 46) << table;
    EXPECT_FALSE(std::getline(got, g)) << table << ": more lines than texts";
  }
  // Special tokens are text unless asked for.
  Result r = RunCli("tokenize --tokenizer " + testing::TokenizerDir("llama3") + " --text '<|eot_id|>' --parse-special");
  EXPECT_EQ(r.out, "128009\n");
  r = RunCli("tokenize --tokenizer " + testing::TokenizerDir("llama3") + " --text '<|eot_id|>'");
  EXPECT_NE(r.out, "128009\n");
  EXPECT_GT(r.out.size(), 8u);
}

// `llmflash render-chat` prints exactly what Python's jinja2 rendered, for
// every shared template and conversation; a template's exception is one
// clean error line.
TEST(Cli, RenderChatPrintsJinja2sText) {
  const std::string dir = testing::SharedDir() + "/chat-templates";
  auto conversations = nlohmann::json::parse(testing::ReadFile(dir + "/conversations.json"));
  auto expected = nlohmann::json::parse(testing::ReadFile(dir + "/expected.json"));
  testing::TempDir tmp;
  int compared = 0;
  for (const auto& conv : conversations) {
    const std::string messages = tmp.File(conv["id"].get<std::string>() + ".json");
    testing::WriteFile(messages, conv.dump());
    for (const char* file : {"meta-llama-Llama-3.1-8B-Instruct.jinja", "Qwen-Qwen2.5-7B-Instruct.jinja",
                             "google-gemma-2-2b-it.jinja"}) {
      const std::string f = file;
      const std::string bos = f[0] == 'm' ? "'<|begin_of_text|>'" : f[0] == 'g' ? "'<bos>'" : "''";
      const std::string eos = f[0] == 'm' ? "'<|eot_id|>'" : f[0] == 'g' ? "'<eos>'" : "'<|im_end|>'";
      Result r = RunCli("render-chat --template " + dir + "/" + f + " --messages " + messages + " --bos-token " + bos +
                            " --eos-token " + eos + (conv["add_generation_prompt"].get<bool>() ? " --add-generation-prompt" : ""),
                        tmp.File("err"));
      const auto& want = expected[f][conv["id"].get<std::string>()];
      if (want.is_object()) {
        EXPECT_EQ(r.exit_code, 1) << f;
        EXPECT_THAT(testing::ReadFile(tmp.File("err")), HasSubstr(want["error"].get<std::string>()));
      } else {
        EXPECT_EQ(r.exit_code, 0) << f;
        EXPECT_EQ(r.out, want.get<std::string>()) << f << " / " << conv["id"];
      }
      ++compared;
    }
  }
  EXPECT_EQ(compared, 9);
}

// Runs the CLI in a child whose seccomp filter makes io_uring_setup fail with
// EPERM, as Docker's default profile does.
int RunWithoutIoUring(const std::vector<std::string>& args, const std::string& out,
                      const std::string& err) {
  pid_t pid = fork();
  if (pid == 0) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
      _exit(90);
    }
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv;
    std::string cli = LLMFLASH_CLI_PATH;
    argv.push_back(cli.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(91);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Cli, FallsBackToPreadWhenIoUringIsBlocked) {
  testing::TempDir tmp;
  std::vector<std::string> args = {"generate", "--model", testing::Stories260KModel(),
                                   "--prompt", "Once upon a time", "--max-tokens", "60",
                                   "--dram-budget", "140%", "--stats"};
  ASSERT_EQ(RunWithoutIoUring(args, tmp.File("out"), tmp.File("err")), 0);
  std::string err = testing::ReadFile(tmp.File("err"));
  EXPECT_NE(err.find("io_uring is unavailable"), std::string::npos) << err;
  EXPECT_NE(err.find("backend pread"), std::string::npos) << err;
  size_t first = err.find("reading with pread instead");
  EXPECT_EQ(err.find("reading with pread instead", first + 1), std::string::npos) << "said twice";
  Result normal = RunCli("generate --model " + testing::Stories260KModel() +
                         " --prompt 'Once upon a time' --max-tokens 60 --dram-budget 140%");
  EXPECT_EQ(testing::ReadFile(tmp.File("out")), normal.out);
  // Forcing io_uring where it is blocked is an error, not a silent fallback.
  args.push_back("--io-backend");
  args.push_back("uring");
  EXPECT_EQ(RunWithoutIoUring(args, tmp.File("out"), tmp.File("err")), 1);
  EXPECT_NE(testing::ReadFile(tmp.File("err")).find("Unsupported"), std::string::npos);
}

}  // namespace
}  // namespace llmflash
