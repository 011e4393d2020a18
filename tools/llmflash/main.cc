// The `llmflash` command line: a thin layer that parses flags and calls the
// library. Each subcommand prints one clear message and exits non-zero on
// error.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>

#include "llmflash/llmflash.h"
#include "tools/common/flags.h"
#include "tools/llmflash/commands.h"

namespace llmflash::tools {

int Fail(const Status& st) {
  std::cerr << "llmflash: " << st.ToString() << "\n";
  return 1;
}

namespace {

constexpr char kUsage[] =
    "usage: llmflash <command> [flags]\n"
    "\n"
    "commands:\n"
    "  convert  --input MODEL.bin --tokenizer TOKENIZER.bin --output DIR [--dtype ...]\n"
    "           convert a llama2.c checkpoint into a llmflash model directory\n"
    "  convert  --input HF_DIR --output DIR [--dtype f32|f16|bf16|q8_0|q4_0]\n"
    "           [--ffn-dtype T] [--resident-dtype T] [--embedding-dtype T]\n"
    "           convert a Hugging Face checkpoint (OPT, Llama, Mistral; safetensors)\n"
    "  logits   --model DIR --token-ids 1,7,3 [--json FILE] [--dram-budget B]\n"
    "           the logits at every position of a token sequence\n"
    "  tokenize (--model DIR | --tokenizer FILE_OR_DIR|FILE.gguf) (--text T | --text-file F | --decode 1,2)\n"
    "           [--separator S] [--parse-special] [--add-special] [--bos-id N]\n"
    "           print token ids (space-separated; one line per text of F split on S,\n"
    "           where \\n and \\t are newline and tab)\n"
    "           or the text of ids\n"
    "  generate --model DIR --prompt TEXT [--max-tokens N] [--temperature T]\n"
    "           [--top-p P] [--top-k K] [--min-p P] [--repeat-penalty R] [--repeat-last-n N]\n"
    "           [--seed S] [--dram-budget BYTES|N%] [--window K]\n"
    "           [--io-backend auto|uring|pread] [--max-context N] [--kv-cache f16|f32|q8_0] [--stats]\n"
    "           [--no-predictor] [--compute-window] [--chat [--system TEXT]] [--stop TEXT]\n"
    "           [--prefill batch|token] [--prefill-batch N]\n"
    "           (--chat: the prompt is a user message in the model's chat template;\n"
    "           the prompt runs in micro-batches of N tokens, --prefill token: one at a time)\n"
    "  chat     --model DIR [--system TEXT] [generate's options]\n"
    "           a conversation on stdin, a line per user turn, in one session: each turn\n"
    "           runs only its new tokens (--stats: what each turn ran)\n"
    "  render-chat (--template FILE.jinja | --model DIR) --messages FILE.json\n"
    "           [--add-generation-prompt] [--bos-token S] [--eos-token S]\n"
    "           print a conversation as the chat template renders it, and nothing else\n"
    "  train-predictor --model DIR (--calibration FILE.txt | --self-generate N)\n"
    "           [--rank R] [--target-recall 0.99] [--method svd|trained|auto]\n"
    "           [--activation-sparsity 0.5] [--seed S] [--epochs E] [--dram-budget BYTES|N%]\n"
    "           [--max-context N]\n"
    "           calibrate in micro-batches within the budget (as generate; activations\n"
    "           spilled to the model directory), then train one layer at a time\n"
    "  eval     --model DIR --text FILE [--tokens N] [--json FILE] [--compute-window]\n"
    "           [--dram-budget BYTES|N%] [--max-context N] [--fractions 0.5,0.4,0.3]\n"
    "           predictor vs dense, teacher-forced: perplexity, agreement, recall, I/O per window;\n"
    "           --fractions runs it again with each layer cut to predict that share (a curve)\n"
    "  synth    --arch opt|llama|llama3|qwen2|mixtral|qwen3-moe --preset tiny|125m|1.3b|6.7b|7b|8b|8x7b|30b-a3b\n"
    "           --output DIR [--activation-sparsity 0.9] [--activation silu|relu] [--seed S]\n"
    "           [--tokenizer tokenizer.json]  (default: byte-level)\n"
    "           [--format hf|llmflash] [--dtype f16|q8_0|q4_0|...]  (--dtype with --format llmflash)\n"
    "           write a synthetic checkpoint of a real model's shape: Hugging Face layout (f16),\n"
    "           or with --format llmflash a converted model directory, one layer in memory at a time\n"
    "  verify   --model DIR      check every file's size and checksum\n"
    "  inspect  --model FILE.gguf   what a GGUF file holds (before convert)\n"
    "  inspect  --model DIR [--dram-budget BYTES|N%] [--window K] [--device-profile F]\n"
    "           [--max-context N] [--kv-cache f16|f32|q8_0]\n"
    "           print the model's shapes, how the budget is spent, the plan and its\n"
    "           predicted latency\n"
    "  calibrate [--file PATH | --size BYTES] [--output PROFILE.json] [--quick]\n"
    "           measure flash reads (chunk size x queue depth), DRAM and matvec speed\n";


int Convert(const Flags& f) {
  Status st = f.Check({"input", "tokenizer", "output", "dtype", "ffn-dtype", "resident-dtype", "embedding-dtype"});
  for (const char* name : {"input", "output"}) if (st.ok()) st = f.Require(name);
  if (!st.ok()) return Fail(st);
  auto format = DetectCheckpointFormat(f.Get("input"));
  if (!format.ok()) return Fail(format.status());
  if (*format == "llama2c") st = f.Require("tokenizer");
  if (!st.ok()) return Fail(st);
  ConvertOptions o;
  o.input = f.Get("input");
  o.tokenizer = f.Get("tokenizer");
  o.output = f.Get("output");
  // GGUF keeps the file's own types unless told otherwise.
  o.dtype = f.Get("dtype", *format == "gguf" ? "auto" : "f32");
  o.ffn_dtype = f.Get("ffn-dtype", "");
  o.resident_dtype = f.Get("resident-dtype", "");
  o.embedding_dtype = f.Get("embedding-dtype", "");
  o.note = [](const std::string& note) { std::fprintf(stderr, "\rconvert: %s\n", note.c_str()); };
  o.progress = [](double x, const std::string& what) {
    std::fprintf(stderr, "\rconverting: %3.0f%% %-24s", 100 * x, what.c_str());
    if (x >= 1.0) std::fprintf(stderr, "\n");
  };
  st = Convert(o);
  if (!st.ok()) { std::fprintf(stderr, "\n"); return Fail(st); }
  std::cerr << "wrote " << o.output << "\n";
  return 0;
}

// The lines of kUsage that describe `cmd` (its entries and their continuation
// lines), or all of kUsage when it has none.
std::string UsageOf(const std::string& cmd) {
  std::istringstream in(kUsage);
  std::string out;
  bool in_cmd = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  ", 0) != 0) continue;                             // header, blank line
    if (line[2] != ' ') in_cmd = line.rfind("  " + cmd + " ", 0) == 0;  // an entry starts
    if (in_cmd) out += line + "\n";
  }
  return out.empty() ? kUsage : "usage: llmflash " + cmd + " [flags]\n" + out;
}

}  // namespace

// Builds ModelOptions from the shared flags (--dram-budget, --window, ...).
StatusOr<ModelOptions> OptionsFromFlags(const Flags& f, const std::string& dir) {
  ModelOptions o;
  if (f.Has("dram-budget")) {
    auto whole = ModelWeightBytes(dir);
    if (!whole.ok()) return whole.status();
    auto b = ParseByteSize(f.Get("dram-budget"), *whole);
    if (!b.ok()) return Status::InvalidArgument("--dram-budget: " + b.status().message());
    if (*b == 0) return Status::InvalidArgument("--dram-budget must be positive");
    o.dram_budget_bytes = *b;
  }
  auto context = f.GetInt("max-context", 0);
  if (!context.ok()) return context.status();
  if (*context < 0 || *context > (1 << 22)) return Status::InvalidArgument("--max-context must be in [0, 2^22]");
  o.max_context = static_cast<int>(*context);
  auto window = f.GetInt("window", o.window);
  if (!window.ok()) return window.status();
  if (*window < 0 || *window > 1 << 20) return Status::InvalidArgument("--window must be in [0, 2^20] (0: planned)");
  o.window = static_cast<int>(*window);
  auto batch = f.GetInt("prefill-batch", 0);
  if (!batch.ok()) return batch.status();
  if (*batch < 0 || *batch > 4096) return Status::InvalidArgument("--prefill-batch must be in [0, 4096] (0: planned)");
  o.prefill_batch = static_cast<int>(*batch);
  auto threads = f.GetInt("threads", 0);
  if (!threads.ok()) return threads.status();
  if (*threads < 0 || *threads > 256) return Status::InvalidArgument("--threads must be in [0, 256]");
  o.threads = static_cast<int>(*threads);
  o.device_profile = f.Get("device-profile", "");
  auto kv = ParseKvCacheType(f.Get("kv-cache", "f16"));
  if (!kv.ok()) return kv.status();
  o.kv_cache = *kv;
  std::string backend = f.Get("io-backend", "auto");
  if (backend == "auto") o.io_backend = IoBackendKind::kAuto;
  else if (backend == "uring") o.io_backend = IoBackendKind::kUring;
  else if (backend == "pread") o.io_backend = IoBackendKind::kPread;
  else return Status::InvalidArgument("--io-backend must be auto, uring or pread");
  return o;
}

namespace {

void PrintStats(const Stats& s) {
  std::fprintf(stderr, "\n%-6s %6s %9s %9s %9s %9s %9s %11s %11s %7s %9s\n", "pass", "tokens", "total_ms",
               "io_ms", "mem_ms", "pred_ms", "comp_ms", "bytes_read", "device_b", "reads",
               "loaded");
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    const TokenStats& t = s.tokens[i];
    std::fprintf(stderr, "%-6zu %5d%s %9.3f %9.3f %9.3f %9.3f %9.3f %11llu %11llu %7llu %9llu\n", i, t.batch,
                 t.prompt ? "p" : " ", t.total_ms, t.io_ms, t.memory_ms, t.predictor_ms, t.compute_ms,
                 (unsigned long long)t.bytes_read, (unsigned long long)t.device_bytes,
                 (unsigned long long)t.read_ops, (unsigned long long)t.neurons_loaded);
  }
  size_t n = s.tokens.size();
  // Prompt passes (batches) and decode steps apart: they are different work.
  double prompt_ms = 0, decode_ms = 0;
  uint64_t prompt_run = 0, decode_steps = 0, decode_bytes = 0, decode_computed = 0;
  for (const TokenStats& t : s.tokens) {
    if (t.prompt) {
      prompt_ms += t.total_ms;
      prompt_run += t.batch;
    } else {
      decode_ms += t.total_ms;
      ++decode_steps;
      decode_bytes += t.bytes_read;
      decode_computed += t.neurons_computed;
    }
  }
  std::fprintf(stderr,
               "%zu forward passes (%llu prompt tokens, %llu generated), backend %s%s\n"
               "prompt: %llu tokens in %.1f ms, %.2f tokens/s\n"
               "decode: %llu steps, %.3f ms/token, %.1f KiB of FFN records read and %.0f neurons computed per token\n",
               n, (unsigned long long)s.prompt_tokens, (unsigned long long)s.generated_tokens, s.io_backend,
               s.direct_io ? " (O_DIRECT)" : " (buffered: O_DIRECT refused)", (unsigned long long)prompt_run,
               prompt_ms, prompt_ms > 0 ? prompt_run * 1000.0 / prompt_ms : 0.0, (unsigned long long)decode_steps,
               decode_steps ? decode_ms / decode_steps : 0.0, decode_steps ? decode_bytes / 1024.0 / decode_steps : 0.0,
               decode_steps ? static_cast<double>(decode_computed) / decode_steps : 0.0);
  for (size_t i = 0; i < s.turns.size(); ++i) {
    const TurnStats& t = s.turns[i];
    std::fprintf(stderr,
                 "turn %zu: context %llu -> %llu tokens; %llu prompt tokens in %.1f ms; first token after %.1f ms; "
                 "%llu generated in %.1f ms\n",
                 i, (unsigned long long)t.context_before,
                 (unsigned long long)(t.context_before + t.prompt_tokens + t.generated_tokens),
                 (unsigned long long)t.prompt_tokens, t.prefill_ms, t.ttft_ms, (unsigned long long)t.generated_tokens,
                 t.decode_ms);
  }
}

}  // namespace

StatusOr<GenerateOptions> GenerateOptionsFromFlags(const Flags& f) {
  GenerateOptions g;
  auto max_tokens = f.GetInt("max-tokens", g.max_tokens);
  auto temperature = f.GetDouble("temperature", g.temperature);
  auto top_p = f.GetDouble("top-p", g.top_p);
  auto seed = f.GetInt("seed", static_cast<int64_t>(g.seed));
  auto top_k = f.GetInt("top-k", g.top_k);
  auto min_p = f.GetDouble("min-p", g.min_p);
  auto penalty = f.GetDouble("repeat-penalty", g.repetition_penalty);
  auto last_n = f.GetInt("repeat-last-n", g.repetition_window);
  for (const Status* s : {&max_tokens.status(), &temperature.status(), &top_p.status(), &seed.status(),
                          &top_k.status(), &min_p.status(), &penalty.status(), &last_n.status()}) {
    if (!s->ok()) return *s;
  }
  if (*top_k < 0 || *top_k > (1 << 24)) return Status::InvalidArgument("--top-k must be in [0, 2^24]");
  if (*last_n < 0 || *last_n > (1 << 22)) return Status::InvalidArgument("--repeat-last-n must be in [0, 2^22]");
  g.top_k = static_cast<int>(*top_k);
  g.min_p = static_cast<float>(*min_p);
  g.repetition_penalty = static_cast<float>(*penalty);
  g.repetition_window = static_cast<int>(*last_n);
  if (*max_tokens < 0 || *max_tokens > (1 << 30)) return Status::InvalidArgument("--max-tokens must be in [0, 2^30]");
  g.max_tokens = static_cast<int>(*max_tokens);
  g.temperature = static_cast<float>(*temperature);
  g.top_p = static_cast<float>(*top_p);
  g.seed = static_cast<uint64_t>(*seed);
  const std::string prefill = f.Get("prefill", "batch");
  if (prefill == "batch") {
    g.prefill = Prefill::kBatch;
  } else if (prefill == "token") {
    g.prefill = Prefill::kToken;
  } else {
    return Status::InvalidArgument("--prefill must be batch or token, not \"" + prefill + "\"");
  }
  if (f.Has("stop")) g.stop.push_back(f.Get("stop"));
  return g;
}

namespace {

int Generate(const Flags& f) {
  Status st = f.Check({"model", "prompt", "max-tokens", "temperature", "top-p", "seed", "top-k", "min-p",
                       "repeat-penalty", "repeat-last-n",
                       "dram-budget", "window", "io-backend", "device-profile", "threads", "stats", "no-predictor",
                       "compute-window", "max-context", "kv-cache", "chat", "system", "prefill", "prefill-batch",
                       "stop"});
  if (st.ok()) st = f.Require("model");
  if (st.ok() && f.Has("system") && !f.Has("chat")) st = Status::InvalidArgument("--system needs --chat");
  if (!st.ok()) return Fail(st);
  auto generate = GenerateOptionsFromFlags(f);
  if (!generate.ok()) return Fail(generate.status());
  GenerateOptions g = *generate;
  std::string dir = f.Get("model");
  if (auto format = DetectCheckpointFormat(dir); format.ok() && *format == "gguf") return InspectGguf(dir);
  auto options = OptionsFromFlags(f, dir);
  if (!options.ok()) return Fail(options.status());
  auto model = Model::Open(dir, *options);
  if (!model.ok()) return Fail(model.status());
  SessionOptions so;
  so.use_predictor = !f.Has("no-predictor");
  so.compute_window = f.Has("compute-window");
  auto session = (*model)->NewSession(so);
  if (!session.ok()) return Fail(session.status());
  std::string prompt = f.Get("prompt");
  if (f.Has("chat")) {  // the prompt is the user's turn, in the model's chat template
    std::vector<ChatMessage> messages;
    if (f.Has("system")) messages.push_back({"system", f.Get("system")});
    messages.push_back({"user", prompt});
    auto rendered = (*model)->RenderChat(messages, /*add_generation_prompt=*/true);
    if (!rendered.ok()) return Fail(rendered.status());
    prompt = *rendered;
    g.add_bos = false;  // the template writes BOS itself
    g.parse_special = true;
  } else {
    std::cout << prompt << std::flush;
  }
  st = (*session)->Generate(prompt, g, [](TokenId, std::string_view piece) {
    // Like llama2.c's safe_printf: drop lone control bytes, keep UTF-8.
    if (piece.size() == 1 && static_cast<unsigned char>(piece[0]) < 0x20 &&
        !std::isspace(static_cast<unsigned char>(piece[0]))) {
      return true;
    }
    std::cout << piece << std::flush;
    return true;
  });
  std::cout << "\n" << std::flush;
  if (f.Has("stats")) PrintStats((*session)->stats());
  return st.ok() ? 0 : Fail(st);
}

// "storage  FFN records q4_0 (3.2 GiB); resident q8_0 1.1 GiB, f32 0.3 MiB"
std::string StorageLine(const ModelStorage& s) {
  auto size = [](uint64_t b) {
    char buf[32];
    if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
    else std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
    return std::string(buf);
  };
  std::string line = "storage          FFN records " + s.ffn_dtype + " (" + size(s.ffn_bytes) + "); resident";
  const char* sep = " ";
  for (const auto& [type, bytes] : s.resident_bytes_by_type) {
    line += sep + type + " " + size(bytes);
    sep = ", ";
  }
  return line;
}

int Verify(const Flags& f) {
  Status st = f.Check({"model"});
  if (st.ok()) st = f.Require("model");
  bool shown = false;
  if (st.ok()) {
    st = VerifyModel(f.Get("model"), [&](double x, const std::string& file) {
      std::fprintf(stderr, "\rverifying: %3.0f%% %-20s", 100 * x, file.c_str());
      shown = true;
    });
  }
  if (shown) std::fprintf(stderr, "\n");
  if (!st.ok()) return Fail(st);
  std::cout << f.Get("model") << ": OK (every file's size and CRC-32C match the manifest)\n";
  auto storage = ReadModelStorage(f.Get("model"));
  if (!storage.ok()) return Fail(storage.status());
  std::cout << StorageLine(*storage) << "\n";
  return 0;
}

int CalibrateCommand(const Flags& f) {
  Status st = f.Check({"file", "size", "output", "quick", "threads"});
  if (!st.ok()) return Fail(st);
  CalibrateOptions o;
  o.file = f.Get("file", "");
  o.quick = f.Has("quick");
  if (f.Has("size")) {
    auto size = ParseByteSize(f.Get("size"), 0);
    if (!size.ok()) return Fail(Status::InvalidArgument("--size: " + size.status().message()));
    o.size_bytes = *size;
  }
  auto threads = f.GetInt("threads", 0);
  if (!threads.ok()) return Fail(threads.status());
  o.threads = static_cast<int>(*threads);
  const std::string out = f.Get("output", DefaultDeviceProfilePath());
  o.scratch_dir = ".";  // without --file: a scratch file in the current directory
  o.progress = [](const std::string& s) { std::fprintf(stderr, "calibrate: %s\n", s.c_str()); };
  auto profile = CalibrateDevice(o);
  if (!profile.ok()) return Fail(profile.status());
  st = SaveDeviceProfile(*profile, out);
  if (!st.ok()) return Fail(st);
  std::printf("device profile written to %s\n", out.c_str());
  return 0;
}

int Inspect(const Flags& f) {
  Status st = f.Check({"model", "dram-budget", "window", "io-backend", "device-profile", "threads", "max-context", "kv-cache", "prefill-batch"});
  if (st.ok()) st = f.Require("model");
  if (!st.ok()) return Fail(st);
  std::string dir = f.Get("model");
  if (auto format = DetectCheckpointFormat(dir); format.ok() && *format == "gguf") return InspectGguf(dir);
  auto options = OptionsFromFlags(f, dir);
  if (!options.ok()) return Fail(options.status());
  auto model = Model::Open(dir, *options);
  if (!model.ok()) return Fail(model.status());
  const ModelInfo& i = (*model)->info();
  auto mib = [](uint64_t b) { return b / 1048576.0; };
  std::printf("architecture     %s (%s)%s%s\n", i.architecture.c_str(), i.dtype.c_str(),
              i.source_architecture.empty() ? "" : ", from ", i.source_architecture.c_str());
  if (!i.stop_ids.empty()) {
    std::string stops;
    for (TokenId id : i.stop_ids) stops += (stops.empty() ? "" : " ") + std::to_string(id);
    std::printf("tokens           BOS %s, generation stops at %s\n",
                i.bos_id >= 0 ? std::to_string(i.bos_id).c_str() : "none", stops.c_str());
  }
  std::printf("shape            %d layers, dim %d, %d FFN neurons/layer, vocab %d, context %d\n",
              i.n_layers, i.dim, i.ffn_dim, i.vocab_size, i.max_context);
  if (i.n_experts > 0) {
    std::printf("experts          %d per layer of %d neurons; the router picks %d per token (%.1f%% of the FFN)\n",
                i.n_experts, i.ffn_dim / i.n_experts, i.n_experts_used, 100.0 * i.n_experts_used / i.n_experts);
  }
  std::printf("model            %.3f MiB (resident %.3f MiB, FFN bundle %.3f MiB)\n",
              mib(i.model_bytes), mib(i.resident_bytes), mib(i.ffn_bytes));
  std::printf("neuron record    %llu bytes\n", (unsigned long long)i.record_bytes);
  if (auto storage = ReadModelStorage(dir); storage.ok()) std::printf("%s\n", StorageLine(*storage).c_str());
  std::printf("DRAM budget      %.3f MiB: resident %.3f MiB (of which tokenizer, template and manifest %.3f MiB)"
              " + session %.3f MiB\n",
              mib(i.budget_bytes), mib(i.resident_bytes), mib(i.text_bytes), mib(i.session_bytes));
  std::printf("                 the session's KV cache: %d tokens, %.3f MiB (%s, %.1f KiB per token; --max-context N"
              " and --kv-cache set it); a prompt's micro-batch of %d tokens: %.3f MiB (--prefill-batch)\n",
              i.max_context, mib(i.kv_cache_bytes), i.kv_cache_dtype.c_str(),
              i.max_context > 0 ? i.kv_cache_bytes / 1024.0 / i.max_context : 0.0,
              i.prefill_batch, mib(i.batch_bytes));
  if (i.embeddings_on_flash) {
    std::printf("                 the token embeddings stay on flash (a row read per token)\n");
  }
  std::printf("neuron matrix    %d of %d neurons per layer on average (%.1f%%)%s\n", i.neuron_capacity,
              i.ffn_dim, 100.0 * i.neuron_capacity / i.ffn_dim,
              i.streams_layers ? "; what does not fit is streamed" : "");
  if (!i.layer_neuron_capacity.empty()) {
    auto [lo, hi] = std::minmax_element(i.layer_neuron_capacity.begin(), i.layer_neuron_capacity.end());
    if (*lo != *hi) {
      std::printf("                 per layer %d .. %d rows, by each layer's predicted active neurons:", *lo, *hi);
      for (size_t l = 0; l < i.layer_neuron_capacity.size(); ++l) {
        std::printf("%s%d", l % 16 == 0 ? "\n                   " : " ", i.layer_neuron_capacity[l]);
      }
      std::printf("\n");
    }
  }
  const DeviceProfile& p = (*model)->device_profile();
  std::printf("device profile   %s\n", i.profile_source.c_str());
  std::printf("                 reads %.0f MB/s (4 KiB, QD1) .. %.0f MB/s (1 MiB, QD64); DRAM read %.1f GB/s\n",
              p.ReadThroughput(4096, 1) / 1e6, p.ReadThroughput(1 << 20, 64) / 1e6,
              DramReadBytesPerSecond(p) / 1e9);
  if (i.n_experts > 0) {
    std::printf("plan             the router picks whole experts, read when picked (guessed "
                "before each layer's attention to overlap it); rows keep the experts used most lately\n");
  } else {
    std::printf("plan             window k = %d; %s\n", i.window,
                i.has_predictor ? "predictor on" : "no predictor: every neuron is computed");
  }
  if (i.has_predictor) {
    std::string method = i.predictor_method;
    if (method == "auto") {  // how the layers came out
      const auto& v = i.predictor_layer_methods;
      const long svd = std::count(v.begin(), v.end(), "svd");
      method += " (svd in " + std::to_string(svd) + " layers, trained in " + std::to_string(v.size() - svd) + ")";
    }
    std::printf("predictor        %s, rank up to %d, held as %s; on held-out calibration rows: recall %.3f, "
                "precision %.3f, %.1f%% of neurons predicted (means over layers)\n",
                method.c_str(), i.predictor_rank, i.predictor_dtype.c_str(), i.predictor_recall,
                i.predictor_precision, 100 * i.predictor_fraction);
  }
  std::printf("expected token   %.1f reads, %.2f MiB read, %.2f MiB of resident weights + %.2f MiB of predictors streamed\n",
              i.planned_reads_per_token, i.planned_bytes_per_token / 1048576.0,
              i.weight_bytes_per_token / 1048576.0, i.predictor_bytes_per_token / 1048576.0);
  std::printf("predicted        %.2f ms/token = I/O %.2f + compute %.2f + predictor %.2f (+ memory); floor %.2f ms\n",
              i.planned_ms_per_token, i.planned_io_ms, i.planned_compute_ms, i.planned_predictor_ms,
              i.floor_ms);
  return 0;
}

}  // namespace
}  // namespace llmflash::tools

int main(int argc, char** argv) {
  using namespace llmflash::tools;
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "help") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  Flags flags(argc, argv, 2, {"stats", "no-predictor", "compute-window", "quick", "parse-special", "add-special",
                              "chat", "add-generation-prompt"});
  if (flags.help()) {
    std::fputs(UsageOf(cmd).c_str(), stdout);
    return 0;
  }
  if (cmd == "convert") return Convert(flags);
  if (cmd == "generate") return Generate(flags);
  if (cmd == "verify") return Verify(flags);
  if (cmd == "train-predictor") return TrainPredictorCommand(flags);
  if (cmd == "eval") return EvalCommand(flags);
  if (cmd == "logits") return LogitsCommand(flags);
  if (cmd == "tokenize") return TokenizeCommand(flags);
  if (cmd == "render-chat") return RenderChatCommand(flags);
  if (cmd == "chat") return ChatCommand(flags);
  if (cmd == "synth") return SynthCommand(flags);
  if (cmd == "inspect") return Inspect(flags);
  if (cmd == "calibrate") return CalibrateCommand(flags);
  std::cerr << "llmflash: unknown command \"" << cmd << "\"\n\n" << kUsage;
  return 2;
}
