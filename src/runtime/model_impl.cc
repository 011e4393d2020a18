// Model::Open: manifest, weights, tokenizer, plan, preallocated sessions.
#include "runtime/model_impl.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

#include "format/llama2c_tokenizer_file.h"
#include "runtime/planner.h"
#include "runtime/session_impl.h"
#include "util/file.h"
#include "util/heap_usage.h"
#include "util/macros.h"

namespace llmflash {
namespace {

Status ValidateOptions(const ModelOptions& o) {
  auto bad = [](const std::string& what) { return Status::InvalidArgument("ModelOptions." + what); };
  if (o.max_sessions < 1 || o.max_sessions > 256) return bad("max_sessions must be in [1, 256]");
  if (o.max_context < 0) return bad("max_context must be >= 0");
  if (o.window < 0 || o.window > 1 << 20) return bad("window must be in [0, 2^20] tokens (0: planned)");
  if (o.queue_depth < 1 || o.queue_depth > 4096) return bad("queue_depth must be in [1, 4096]");
  if (o.threads < 0 || o.threads > 256) return bad("threads must be in [0, 256]");
  if (o.prefill_batch < 0 || o.prefill_batch > 4096) return bad("prefill_batch must be in [0, 4096] (0: planned)");
  return Status::OK();
}

}  // namespace

Model::~Model() = default;
Session::~Session() = default;

StatusOr<std::unique_ptr<Model>> Model::Open(const std::string& dir, const ModelOptions& options) {
  return ModelImpl::OpenImpl(dir, options);
}

StatusOr<uint64_t> ModelWeightBytes(const std::string& dir) {
  ASSIGN_OR_RETURN(Manifest m, LoadManifest(dir));
  return m.FindFile(m.resident_file)->size + m.FindFile(m.bundle.file)->size;
}

StatusOr<ModelStorage> ReadModelStorage(const std::string& dir) {
  ASSIGN_OR_RETURN(Manifest m, LoadManifest(dir));
  ModelStorage s;
  s.ffn_dtype = DTypeName(m.ffn_dtype);
  s.ffn_bytes = m.FindFile(m.bundle.file)->size;
  for (const TensorEntry& t : m.tensors) s.resident_bytes_by_type[DTypeName(t.dtype)] += t.bytes;
  return s;
}

StatusOr<std::unique_ptr<Model>> ModelImpl::OpenImpl(const std::string& dir,
                                                     const ModelOptions& options,
                                                     IoFaultInjector* faults) {
  auto model = std::unique_ptr<ModelImpl>(new ModelImpl());
  Status st;
  try {
    st = model->Load(dir, options, faults);
  } catch (const std::bad_alloc&) {
    st = Status::ResourceExhausted(dir + ": out of memory while opening the model");
  } catch (const std::length_error&) {
    st = Status::ResourceExhausted(dir + ": a size in the model is too large to allocate");
  }
  if (!st.ok()) return st;
  return std::unique_ptr<Model>(std::move(model));
}

namespace {

// The first figure measured for a model directory in this process: every
// later Open of it plans with the same bytes, so its minimum budget does not
// move with what else the heap did meanwhile (the first load may also count
// one-time allocations of the libraries it uses: the safe side).
uint64_t RememberTextBytes(const std::string& dir, uint64_t measured) {
  static std::mutex mu;
  static std::map<std::string, uint64_t> seen;
  std::lock_guard<std::mutex> lock(mu);
  return seen.emplace(dir, measured).first->second;
}

}  // namespace

Status ModelImpl::Load(const std::string& dir, const ModelOptions& options,
                       IoFaultInjector* faults) {
  RETURN_IF_ERROR(ValidateOptions(options));
  dir_ = dir;
  // What the manifest, tokenizer and chat template keep in DRAM is counted
  // in the budget like the weights: the heap's growth while they load (a
  // 32,000-token tokenizer.json keeps ~4.7 MiB; Llama 3's and Gemma's far
  // more).
  const uint64_t heap_before = HeapBytesInUse();
  ASSIGN_OR_RETURN(manifest_, LoadManifest(dir));
  const ModelConfig& c = manifest_.config;
  if (manifest_.tokenizer.type == "llama2c") {
    std::string tok_path = JoinPath(dir, manifest_.tokenizer.file);
    ASSIGN_OR_RETURN(std::string tok_bytes, ReadFileToString(tok_path, 256ull << 20));
    ASSIGN_OR_RETURN(Llama2cVocab vocab, ParseLlama2cTokenizer(tok_bytes, c.vocab_size, tok_path));
    ASSIGN_OR_RETURN(Llama2cTokenizer tok, Llama2cTokenizer::Create(std::move(vocab),
                                                                   manifest_.tokenizer.bos_id,
                                                                   manifest_.tokenizer.eos_id));
    tokenizer_ = WrapLlama2c(std::move(tok));
  } else if (manifest_.tokenizer.type == "hf") {
    ASSIGN_OR_RETURN(HfTokenizer tok, HfTokenizer::Load(JoinPath(dir, manifest_.tokenizer.file)));
    tokenizer_ = WrapHf(std::move(tok), manifest_.tokenizer.bos_id, manifest_.tokenizer.stop_ids);
  }  // "none": Logits works, Generate and Encode say Unsupported
  if (!manifest_.tokenizer.chat_template.empty()) {
    const std::string path = JoinPath(dir, manifest_.tokenizer.chat_template);
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 16ull << 20));
    auto parsed = ChatTemplate::Parse(text, path);
    if (!parsed.ok()) return Status::Corruption(parsed.status().message());
    chat_template_ = std::move(*parsed);
  }
  const uint64_t heap_after = HeapBytesInUse();
  const uint64_t text_bytes = RememberTextBytes(dir, heap_after > heap_before ? heap_after - heap_before : 0);
  const FileEntry* resident = manifest_.FindFile(manifest_.resident_file);
  const DType predictor_dtype = PredictorDType(manifest_);
  // Always in DRAM beside the resident weights: predictors and the text.
  const uint64_t beside_weights = Predictors::MemoryBytes(manifest_, predictor_dtype) + text_bytes;
  // When the budget cannot hold the whole FFN (or not even the resident
  // weights), an untied model's embedding table (one row used per token)
  // stays on flash and its DRAM goes to neuron rows; one small read per token
  // is far cheaper than the FFN reads those rows save.
  StatusOr<MemoryPlan> plan = PlanMemory(manifest_, resident->size + beside_weights, options);
  const uint64_t embeddings = ResidentWeights::MovableEmbeddingBytes(manifest_);
  const bool embeddings_on_flash = embeddings > 0 && (!plan.ok() || plan->streams);
  const uint64_t resident_bytes = resident->size - (embeddings_on_flash ? embeddings : 0);
  if (embeddings_on_flash) plan = PlanMemory(manifest_, resident_bytes + beside_weights, options);
  if (!plan.ok()) return plan.status();
  plan_ = *plan;
  // Before the weights: a first-time calibration's buffers are freed before
  // the budget's allocations start, so they never add to the peak.
  const FileEntry* bundle = manifest_.FindFile(manifest_.bundle.file);
  Status profile_error;
  profile_ = ResolveDeviceProfile(options, JoinPath(dir, manifest_.bundle.file), bundle->size,
                                  &info_.profile_source, &profile_error);
  RETURN_IF_ERROR(profile_error);
  RETURN_IF_ERROR(weights_.Load(manifest_, dir, embeddings_on_flash));
  RETURN_IF_ERROR(predictors_.Load(manifest_, dir, predictor_dtype));
  const LoaderPlan loader = PlanLoader(manifest_, plan_, profile_, options);

  FlashFfnOptions ffn;
  ffn.loader.capacities = plan_.capacities;
  ffn.loader.window = loader.window;
  ffn.loader.frequency_half_life = loader.frequency_half_life;
  ffn.loader.replace_in_place = c.moe();
  ffn.loader.backend = options.io_backend;
  ffn.loader.io = plan_.io;
  ffn.loader.io.faults = faults;
  const int threads = plan_.threads;
  for (int i = 0; i < options.max_sessions; ++i) {
    auto state = std::make_unique<SessionState>(threads);
    ffn.pool = &state->pool;
    RETURN_IF_ERROR(state->ffn.Init(manifest_, dir, ffn));
    state->transformer.Init(c, &weights_, &predictors_, &state->ffn, plan_.max_context,
                            &state->pool, KvDType(options), plan_.prefill_batch);
    states_.push_back(std::move(state));
  }

  info_.window = loader.window;
  info_.weight_bytes_per_token_by_type = loader.weight_bytes_per_token;
  for (const auto& [type, bytes] : loader.weight_bytes_per_token) info_.weight_bytes_per_token += bytes;
  info_.predictor_bytes_per_token = loader.expected.predictor_bytes;
  info_.predictor_dtype = loader.expected.predictor_dtype;
  info_.planned_ms_per_token = loader.estimate.total_ms;
  info_.planned_io_ms = loader.estimate.io_ms;
  info_.planned_compute_ms = loader.estimate.compute_ms;
  info_.planned_predictor_ms = loader.estimate.predictor_ms;
  info_.planned_reads_per_token = loader.expected.read_ops;
  info_.planned_bytes_per_token = loader.expected.device_bytes;
  info_.floor_ms = loader.floor_ms;
  info_.architecture = c.architecture;
  info_.source_architecture = c.source_architecture;
  if (manifest_.tokenizer.type != "none") {
    info_.bos_id = manifest_.tokenizer.bos_id;
    info_.stop_ids = manifest_.tokenizer.stop_ids;
  }
  info_.dtype = DTypeName(manifest_.dtype);
  info_.ffn_dtype = DTypeName(manifest_.ffn_dtype);
  info_.n_layers = c.n_layers;
  info_.dim = c.dim;
  info_.ffn_dim = c.ffn_dim;
  info_.n_experts = c.n_experts;
  info_.n_experts_used = c.n_experts_used;
  info_.vocab_size = c.vocab_size;
  info_.max_context = plan_.max_context;
  info_.prefill_batch = plan_.prefill_batch;
  info_.kv_cache_bytes = plan_.kv_cache_bytes;
  info_.kv_cache_dtype = DTypeName(KvDType(options));
  info_.batch_bytes = plan_.batch_bytes;
  info_.resident_bytes = resident_bytes + beside_weights;
  info_.text_bytes = text_bytes;
  info_.embeddings_on_flash = embeddings_on_flash;
  info_.has_predictor = !predictors_.empty();
  if (info_.has_predictor) {
    const PredictorInfo& pi = manifest_.predictor;
    info_.predictor_method = pi.method;
    for (const PredictorLayerInfo& l : pi.layers) {
      info_.predictor_layer_methods.push_back(l.method);
      info_.predictor_rank = std::max(info_.predictor_rank, l.rank);
      info_.predictor_recall += l.recall / pi.layers.size();
      info_.predictor_precision += l.precision / pi.layers.size();
      info_.predictor_fraction += l.predicted_fraction / pi.layers.size();
    }
  }
  info_.ffn_bytes = bundle->size;
  info_.ffn_path = JoinPath(dir, manifest_.bundle.file);
  info_.model_bytes = resident->size + bundle->size;
  info_.record_bytes = manifest_.bundle.record_stride;
  info_.budget_bytes = plan_.budget_bytes;
  info_.session_bytes = plan_.SessionBytes();
  info_.neuron_capacity = plan_.capacity;
  info_.layer_neuron_capacity = plan_.capacities;
  info_.streams_layers = plan_.streams;
  return Status::OK();
}

StatusOr<std::unique_ptr<Session>> ModelImpl::NewSession(const SessionOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : states_) {
    if (!s->in_use) {
      s->in_use = true;
      return std::unique_ptr<Session>(new SessionImpl(this, s.get(), options));
    }
  }
  return Status::ResourceExhausted("all " + std::to_string(states_.size()) +
                                   " sessions are in use (raise ModelOptions.max_sessions)");
}

void ModelImpl::Release(SessionState* state) {
  std::lock_guard<std::mutex> lock(mu_);
  state->in_use = false;
}

Status ModelImpl::NeedTokenizer() const {
  if (tokenizer_ != nullptr) return Status::OK();
  return Status::Unsupported(dir_ + ": this model's tokenizer (type \"" + manifest_.tokenizer.type +
                             "\") is not supported yet; use token ids (Session::Logits)");
}

StatusOr<std::vector<TokenId>> ModelImpl::Encode(std::string_view text, bool add_bos) const {
  Status st = NeedTokenizer();
  if (!st.ok()) return st;
  std::vector<int> ids = tokenizer_->Encode(text, add_bos);
  return std::vector<TokenId>(ids.begin(), ids.end());
}

StatusOr<std::string> ModelImpl::RenderChat(const std::vector<ChatMessage>& messages,
                                            bool add_generation_prompt) const {
  if (!chat_template_) {
    return Status::Unsupported(dir_ + ": this model has no chat template (its tokenizer_config.json had none)");
  }
  return chat_template_->Apply(messages, add_generation_prompt, manifest_.tokenizer.bos_text,
                               manifest_.tokenizer.eos_text);
}

std::string ModelImpl::Decode(TokenId prev, TokenId token) const {
  if (tokenizer_ == nullptr) return "";
  return tokenizer_->Decode(prev, token);
}

}  // namespace llmflash
