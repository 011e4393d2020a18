// `llmflash train-predictor` and `llmflash eval`.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "llmflash/convert.h"
#include "runtime/evaluator.h"
#include "runtime/predictor_builder.h"
#include "tools/llmflash/commands.h"
#include "util/file.h"

namespace llmflash::tools {

int TrainPredictorCommand(const Flags& f) {
  Status st = f.Check({"model", "calibration", "self-generate", "rank", "target-recall", "method",
                       "activation-sparsity", "seed", "epochs", "dram-budget", "max-context", "threads",
                       "device-profile"});
  if (st.ok()) st = f.Require("model");
  if (st.ok() && f.Has("calibration") == f.Has("self-generate")) {
    st = Status::InvalidArgument("give exactly one of --calibration FILE.txt or --self-generate N");
  }
  if (!st.ok()) return Fail(st);
  BuildPredictorOptions o;
  o.model_dir = f.Get("model");
  auto model = OptionsFromFlags(f, o.model_dir);
  if (!model.ok()) return Fail(model.status());
  o.model = *model;
  auto self = f.GetInt("self-generate", 0);
  auto rank = f.GetInt("rank", o.train.rank);
  auto recall = f.GetDouble("target-recall", o.train.target_recall);
  auto sparsity = f.GetDouble("activation-sparsity", o.train.activation_sparsity);
  auto seed = f.GetInt("seed", 1);
  auto epochs = f.GetInt("epochs", o.train.max_epochs);
  for (const Status* s : {&self.status(), &rank.status(), &recall.status(), &sparsity.status(),
                          &seed.status(), &epochs.status()}) {
    if (!s->ok()) return Fail(*s);
  }
  if (*self < 0 || *self > 10000000) return Fail(Status::InvalidArgument("--self-generate must be in [1, 10^7]"));
  if (*rank < 1 || *rank > 65536) return Fail(Status::InvalidArgument("--rank must be in [1, 65536]"));
  if (!(*recall > 0 && *recall <= 1)) return Fail(Status::InvalidArgument("--target-recall must be in (0, 1]"));
  if (!(*sparsity >= 0 && *sparsity < 1)) return Fail(Status::InvalidArgument("--activation-sparsity must be in [0, 1)"));
  if (*epochs < 0 || *epochs > 10000) return Fail(Status::InvalidArgument("--epochs must be in [0, 10000]"));
  o.self_generate = static_cast<int>(*self);
  if (f.Has("calibration")) {
    auto text = ReadFileToString(f.Get("calibration"), 1ull << 30);
    if (!text.ok()) return Fail(text.status());
    o.calibration_text = *text;
  }
  o.train.method = f.Get("method", "svd");
  o.train.rank = static_cast<int>(*rank);
  o.train.target_recall = static_cast<float>(*recall);
  o.train.activation_sparsity = static_cast<float>(*sparsity);
  o.train.seed = static_cast<uint64_t>(*seed);
  o.train.max_epochs = static_cast<int>(*epochs);
  o.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  auto layers = BuildPredictor(o);
  if (!layers.ok()) return Fail(layers.status());
  double frac = 0;
  for (const auto& l : *layers) frac += l.predicted_fraction;
  std::printf("stored predictor (%s) in %s: mean predicted-active fraction %.1f%% at target recall %.3f\n",
              o.train.method.c_str(), o.model_dir.c_str(), 100 * frac / layers->size(),
              o.train.target_recall);
  return 0;
}

int EvalCommand(const Flags& f) {
  Status st = f.Check({"model", "text", "tokens", "json", "compute-window", "dram-budget", "max-context",
                       "threads", "device-profile", "fractions"});
  if (st.ok()) st = f.Require("model");
  if (st.ok()) st = f.Require("text");
  if (!st.ok()) return Fail(st);
  EvalOptions o;
  o.model_dir = f.Get("model");
  auto model = OptionsFromFlags(f, o.model_dir);
  if (!model.ok()) return Fail(model.status());
  o.model = *model;
  auto text = ReadFileToString(f.Get("text"), 1ull << 30);
  if (!text.ok()) return Fail(text.status());
  o.text = *text;
  auto tokens = f.GetInt("tokens", 0);
  if (!tokens.ok()) return Fail(tokens.status());
  if (*tokens < 0) return Fail(Status::InvalidArgument("--tokens must be >= 0"));
  o.max_tokens = static_cast<int>(*tokens);
  o.compute_window = f.Has("compute-window");
  auto fractions = f.GetDoubles("fractions");
  if (!fractions.ok()) return Fail(fractions.status());
  o.fractions = *fractions;
  o.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  auto r = Evaluate(o);
  if (!r.ok()) return Fail(r.status());
  std::printf("%d positions, teacher-forced on %s\n", r->tokens, f.Get("text").c_str());
  std::printf("true inactive fraction   %.1f%% of FFN neurons per token\n", 100 * r->inactive_fraction);
  if (!r->has_predictor) {
    std::printf("perplexity (dense)       %.4f\nno predictor stored: run llmflash train-predictor\n", r->ppl_dense);
  } else {
    std::printf("perplexity dense/sparse  %.4f / %.4f (%+.2f%%)\n", r->ppl_dense, r->ppl_sparse,
                100 * (r->ppl_sparse / r->ppl_dense - 1));
    std::printf("greedy agreement         %.1f%%\n", 100 * r->greedy_agreement);
    std::printf("neurons computed         %.1f%% per token\n\n", 100 * r->computed_fraction);
    std::printf("layer  recall  precision  predicted  truly-active\n");
    for (size_t l = 0; l < r->layers.size(); ++l) {
      const LayerEval& e = r->layers[l];
      std::printf("%5zu  %6.3f  %9.3f  %8.1f%%  %11.1f%%\n", l, e.recall, e.precision,
                  100 * e.predicted_fraction, 100 * e.true_active_fraction);
    }
    std::printf("\nwindow k  FFN bytes read/token  (dense: %.0f)  resident fraction\n", r->dense_bytes_per_token);
    for (const WindowEval& w : r->windows) {
      std::printf("%8d  %20.0f  %6.2f%% of dense  %16.1f%%\n", w.k, w.bytes_read_per_token,
                  100 * w.bytes_read_per_token / r->dense_bytes_per_token, 100 * w.resident_fraction);
    }
  }
  if (!r->curve.empty()) {
    std::printf("\ncurve: each layer's predictor cut to predict a share of its neurons\n");
    std::printf("%50s FFN bytes read per token, window of k tokens\n", "");
    std::printf("predicted  computed  agreement  perplexity (+%%)    ");
    for (const WindowEval& w : r->curve[0].windows) std::printf(" %9s", ("k=" + std::to_string(w.k)).c_str());
    std::printf("\n");
    for (const CurvePoint& p : r->curve) {
      std::printf("%8.1f%%  %7.1f%%  %8.1f%%  %7.4f (%+6.2f%%)", 100 * p.target_fraction,
                  100 * p.computed_fraction, 100 * p.greedy_agreement, p.ppl_sparse,
                  100 * (p.ppl_sparse / r->ppl_dense - 1));
      for (const WindowEval& w : p.windows) std::printf(" %9.0f", w.bytes_read_per_token);
      std::printf("\n");
    }
  }
  if (f.Has("json")) {
    nlohmann::json layers = nlohmann::json::array(), windows = nlohmann::json::array();
    for (const auto& e : r->layers) {
      layers.push_back({{"recall", e.recall}, {"precision", e.precision},
                        {"predicted_fraction", e.predicted_fraction},
                        {"true_active_fraction", e.true_active_fraction}});
    }
    for (const auto& w : r->windows) {
      windows.push_back({{"k", w.k}, {"bytes_read_per_token", w.bytes_read_per_token},
                         {"resident_fraction", w.resident_fraction}});
    }
    nlohmann::json curve = nlohmann::json::array();
    for (const auto& p : r->curve) {
      nlohmann::json bytes = nlohmann::json::object();
      for (const auto& w : p.windows) bytes[std::to_string(w.k)] = w.bytes_read_per_token;
      curve.push_back({{"predicted_fraction", p.target_fraction}, {"computed_fraction", p.computed_fraction},
                       {"greedy_agreement", p.greedy_agreement}, {"ppl_sparse", p.ppl_sparse},
                       {"bytes_read_per_token", bytes}});
    }
    nlohmann::json j = {{"tokens", r->tokens}, {"has_predictor", r->has_predictor},
                        {"greedy_agreement", r->greedy_agreement},
                        {"computed_fraction", r->computed_fraction},
                        {"inactive_fraction", r->inactive_fraction},
                        {"ppl_dense", r->ppl_dense}, {"ppl_sparse", r->ppl_sparse},
                        {"dense_bytes_per_token", r->dense_bytes_per_token},
                        {"layers", layers}, {"windows", windows}, {"curve", curve}};
    std::ofstream out(f.Get("json"));
    out << j.dump(1) << "\n";
    if (!out) return Fail(Status::IOError(f.Get("json") + ": write failed"));
  }
  return 0;
}

}  // namespace llmflash::tools

namespace llmflash::tools {

int SynthCommand(const Flags& f) {
  Status st = f.Check({"arch", "preset", "activation", "activation-sparsity", "seed", "output", "tokenizer", "format",
                        "dtype"});
  for (const char* name : {"arch", "preset", "output"}) if (st.ok()) st = f.Require(name);
  if (!st.ok()) return Fail(st);
  SynthOptions o;
  o.arch = f.Get("arch");
  o.preset = f.Get("preset");
  o.activation = f.Get("activation", "");
  o.output = f.Get("output");
  o.tokenizer = f.Get("tokenizer", "");
  o.format = f.Get("format", o.format);
  o.dtype = f.Get("dtype", o.dtype);
  if (f.Has("dtype") && o.format != "llmflash") {
    return Fail(Status::InvalidArgument("--dtype goes with --format llmflash (the Hugging Face files are f16)"));
  }
  auto sparsity = f.GetDouble("activation-sparsity", o.activation_sparsity);
  auto seed = f.GetInt("seed", 1);
  if (!sparsity.ok()) return Fail(sparsity.status());
  if (!seed.ok()) return Fail(seed.status());
  o.activation_sparsity = *sparsity;
  o.seed = static_cast<uint64_t>(*seed);
  int last = -1;
  o.progress = [&](double x, const std::string& what) {
    int pct = static_cast<int>(100 * x);
    if (pct != last) std::fprintf(stderr, "\rsynthesizing: %3d%% %-48s", pct, what.c_str());
    last = pct;
  };
  st = Synthesize(o);
  std::fprintf(stderr, "\n");
  if (!st.ok()) return Fail(st);
  std::printf("wrote %s (%s %s, %s)\n", o.output.c_str(), o.arch.c_str(), o.preset.c_str(),
              o.format == "llmflash" ? ("a converted model directory, " + o.dtype).c_str()
                                     : "Hugging Face layout, f16");
  return 0;
}

}  // namespace llmflash::tools
