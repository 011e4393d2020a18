// Options for opening a model, starting a session and generating text.
//
// Plain structs with in-class defaults; every field states its unit and
// default. Model::Open, Model::NewSession and Session::Generate validate them
// and return InvalidArgument naming the offending field.
#ifndef LLMFLASH_OPTIONS_H_
#define LLMFLASH_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace llmflash {

// Which backend reads FFN neurons from flash.
enum class IoBackendKind {
  kAuto,   // io_uring when the kernel allows it, else pread (said once on stderr)
  kUring,  // io_uring only; Open fails if it is unavailable
  kPread,  // a small pool of threads calling pread(2)
  kMmap,   // copies from a memory mapping through the page cache: a baseline
           // for benchmarks only (the page cache holds the model outside the
           // budget and outside O_DIRECT's guarantees)
};

// How sessions store attention keys and values.
enum class KvCacheType {
  kF16,  // half the DRAM of f32; the logits move at f16 rounding (~1e-3)
  kF32,  // exact f32 attention, as llama2.c computes it
  // q8_0 blocks (34 bytes per 32 values: 53% of f16's DRAM), keys and values
  // quantized as q8_0 weights are and the query to int8 per block for the
  // key products, as llama.cpp's -ctk/-ctv q8_0 do. Needs head_dim a
  // multiple of 32 (Open says so otherwise).
  kQ8_0,
};

struct ModelOptions {
  // Bytes of DRAM the library may use for everything it allocates: resident
  // weights, neuron matrices, KV caches, I/O buffers and scratch. 0 means
  // "enough to hold the whole model". Default: 0.
  uint64_t dram_budget_bytes = 0;

  // Number of sessions whose state (KV cache, neuron matrices, I/O buffers)
  // is preallocated inside the budget at Open. Default: 1.
  int max_sessions = 1;

  // Context length each session can hold, in tokens. 0 means the model's
  // maximum, capped at 4096 so that a model advertising a huge context does
  // not claim gigabytes of KV cache unasked, and with a DRAM budget capped
  // so that the KV cache takes at most a quarter of what the budget leaves
  // beside the resident weights (at least 256 tokens; ModelInfo::max_context
  // says what was chosen). Smaller values shrink the KV cache. Default: 0.
  int max_context = 0;

  // Storage of each session's KV cache, counted in the budget.
  // Default: kF16.
  KvCacheType kv_cache = KvCacheType::kF16;

  // Window size k: neurons used by any of the last k tokens stay resident
  // when the budget allows. 0: the planner chooses k from the budget and
  // the predictor's active fraction (docs/cost-model.md). Default: 0.
  int window = 0;

  // Read FFN neurons with O_DIRECT so the page cache never holds the model.
  // When the file system refuses O_DIRECT (tmpfs), reads fall back to
  // buffered I/O and Stats::direct_io is false. Default: true.
  bool direct_io = true;

  // Reads kept in flight at once by the I/O backend. Default: 64.
  int queue_depth = 64;

  IoBackendKind io_backend = IoBackendKind::kAuto;

  // A device profile written by `llmflash calibrate`. Empty: the default
  // location (DefaultDeviceProfilePath()); when none is there, Open
  // calibrates quickly on the model's FFN file and saves the result.
  std::string device_profile;

  // Tokens of a prompt run through the model together in one forward pass
  // (a micro-batch): every weight row read from DRAM or flash is used by all
  // of them. 0: the planner picks it (64; 128 when the FFN does not fit the
  // budget, as each pass reads what is not resident; smaller when tight;
  // ModelInfo::prefill_batch says what it chose). 1: one token at a time.
  // Default: 0.
  int prefill_batch = 0;

  // Threads each session computes with (the caller's thread plus helpers).
  // 0 means one per CPU core. Results depend on the count only for products
  // big enough to be split. Default: 0.
  int threads = 0;
};

// Whether a session reads each layer's guessed neurons during its attention.
enum class Lookahead {
  kAuto,  // on while the session's tokens spend over a fifth of their time waiting for reads
  kOn,
  kOff,
};

struct SessionOptions {
  // Use the model's sparsity predictor, when it has one, to read and compute
  // only the neurons predicted active. false computes every neuron (dense).
  // Default: true.
  bool use_predictor = true;

  // With a predictor: compute the FFN over every neuron resident in the
  // window instead of only the predicted ones (no extra reads, more compute,
  // fewer missed neurons). Default: false (docs/architecture.md says why).
  bool compute_window = false;

  // Keep neurons resident between tokens (the window). false drops each
  // layer's neurons after use, so every token reads the whole FFN: the
  // paper's naive baseline, for benchmarks. Default: true.
  bool reuse_resident_neurons = true;

  // With a predictor, on pre-norm models: predict each layer's neurons from
  // its input before attention and read them while attention computes; the
  // exact prediction then reads only what the guess missed. It pays when
  // tokens wait for reads and costs when they are compute-bound, so by
  // default (kAuto) the session measures how long its tokens wait for reads
  // without it and turns it on while that is over a fifth of a token
  // (docs/cost-model.md, "Overlap").
  Lookahead lookahead = Lookahead::kAuto;
};

// How text appended to a session goes through the model.
enum class Prefill {
  kBatch,  // in micro-batches of ModelOptions::prefill_batch tokens (the default)
  kToken,  // one token at a time, each a full decode step (predictor, window, reads)
};

struct GenerateOptions {
  // New tokens to generate after the prompt. 0 only evaluates the prompt.
  // Generation also stops at EOS/BOS or at the context limit. Default: 256.
  int max_tokens = 256;

  // Softmax temperature. 0 means greedy (argmax). Must be >= 0. Default: 0.
  float temperature = 0.0f;

  // Nucleus sampling: keep the smallest set of tokens whose probability sums
  // to top_p. 1 disables it. Must be in (0, 1]. Default: 0.9.
  float top_p = 0.9f;

  // Keep only the k most probable tokens. 0 disables it. Default: 0.
  int top_k = 0;

  // Keep only tokens whose probability is at least min_p times the most
  // probable one's (after top-k and top-p). 0 disables it; must be in
  // [0, 1). Default: 0.
  float min_p = 0.0f;

  // Repetition penalty over the last `repetition_window` tokens of the
  // context (prompt included): each distinct token's positive logit is
  // divided by it, a negative one multiplied (as Hugging Face and llama.cpp
  // do). 1 disables it; must be > 0. Applies before greedy selection too.
  // Default: 1, window 64.
  float repetition_penalty = 1.0f;
  int repetition_window = 64;

  // Generation stops when the text generated in this call contains one of
  // these strings. Text that may be the start of a stop string is held back
  // until it is not (so a callback may receive the text of several tokens
  // at once, with the last token's id); the stop string and what follows it
  // are never delivered. Default: none.
  std::vector<std::string> stop;

  // How the prompt goes through the model. Both give the same logits up to
  // float rounding. Default: kBatch.
  Prefill prefill = Prefill::kBatch;

  // Seed of the sampler's random generator; equal seeds give equal output.
  uint64_t seed = 42;

  // Start the context with a BOS token, as llama2.c does. Only an empty
  // context (a new or reset session) gets one: a continuing conversation
  // never has BOS in its middle. Default: true.
  bool add_bos = true;

  // Special tokens written in the prompt ("<|eot_id|>") are those tokens,
  // not text: for a prompt Model::RenderChat made (with add_bos false: the
  // template writes BOS itself). Default: false.
  bool parse_special = false;
};

// One message of a conversation.
struct ChatMessage {
  std::string role;     // "system", "user", "assistant"
  std::string content;
};

}  // namespace llmflash

#endif  // LLMFLASH_OPTIONS_H_
