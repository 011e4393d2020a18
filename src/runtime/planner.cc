// Planner and profile resolution.
#include "runtime/planner.h"

#include <algorithm>
#include <cmath>

#include "cache/miss_curve.h"
#include "util/file.h"

namespace llmflash {
namespace {

// Used only for bundles too small to measure: a modest NVMe-class device
// and one core's worth of DRAM bandwidth.
DeviceProfile NominalProfile() {
  DeviceProfile p;
  p.measured_file = "(nominal)";
  p.chunk_bytes = {4096, 1 << 20};
  p.queue_depths = {1, 64};
  p.read_bytes_per_s = {{50e6, 400e6}, {500e6, 2000e6}};
  p.read_latency_us = 80;
  p.memcpy_bytes_per_s = 5e9;
  for (DType t : kAllDTypes) p.matvec_bytes_per_s[DTypeName(t)] = 8e9;
  return p;
}

}  // namespace

DeviceProfile ResolveDeviceProfile(const ModelOptions& o, const std::string& bundle_path,
                                   uint64_t bundle_bytes, std::string* source, Status* error) {
  *error = Status::OK();
  if (!o.device_profile.empty()) {
    auto p = LoadDeviceProfile(o.device_profile);
    if (p.ok()) {
      *source = o.device_profile;
      return *p;
    }
    *error = p.status();
    return DeviceProfile{};
  }
  const std::string path = DefaultDeviceProfilePath();
  if (FileSize(path).ok()) {
    auto p = LoadDeviceProfile(path);
    if (p.ok()) {
      *source = path;
      return *p;
    }
    // A damaged cached profile is replaced below rather than failing Open.
  }
  if (bundle_bytes >= kMinQuickCalibrationBytes) {
    CalibrateOptions c;
    c.file = bundle_path;
    c.quick = true;
    c.threads = o.threads;
    auto p = CalibrateDevice(c);
    if (p.ok()) {
      *source = "quick calibration on " + bundle_path;
      if (SaveDeviceProfile(*p, path).ok()) *source += ", saved to " + path;
      return *p;
    }
  }
  *source = "nominal (no profile; run llmflash calibrate)";
  return NominalProfile();
}

// Every resident matrix is read once per token, each in its own type, but
// the embedding tables: a token reads one row of them (and the token table
// in full when it is also the classifier).
std::map<std::string, double> ResidentWeightBytesPerToken(const Manifest& m) {
  std::map<std::string, double> bytes;
  for (const TensorEntry& t : m.tensors) {
    if (t.shape.size() < 2) continue;
    const bool lookup = t.name == "pos_embeddings" || (t.name == "tok_embeddings" && !m.config.tied_classifier);
    bytes[DTypeName(t.dtype)] += lookup ? static_cast<double>(t.bytes) / t.shape[0] : static_cast<double>(t.bytes);
  }
  return bytes;
}

LoaderPlan PlanLoader(const Manifest& m, const MemoryPlan& memory, const DeviceProfile& profile,
                      const ModelOptions& o) {
  const ModelConfig& c = m.config;
  LoaderPlan plan;
  const double n = c.ffn_dim;
  const bool predicted = m.predictor.present &&
                         static_cast<int>(m.predictor.layers.size()) == c.n_layers;
  double frac = 0;
  if (predicted) {
    for (const auto& l : m.predictor.layers) frac += l.predicted_fraction;
    frac /= c.n_layers;
  }
  plan.active_fraction = frac > 0 ? frac : 1.0;
  if (c.moe()) plan.active_fraction = static_cast<double>(c.n_experts_used) / c.n_experts;  // exact
  // Predictors record, per layer, what an LRU matrix of each size read per
  // token on the calibration text: then reads come from that curve at the
  // layer's rows, not from a fixed churn.
  bool curves = predicted;
  for (const auto& l : m.predictor.layers) curves &= l.lru_misses.size() == static_cast<size_t>(kMissCurvePoints);
  plan.churn = plan.active_fraction < 1 ? kDefaultChurn : 0;
  if (c.moe()) {  // the share of routed experts a full matrix misses (uniform routing)
    double cap_all = 0;
    for (int cap : memory.capacities) cap_all += cap;
    plan.churn = 1 - std::min(1.0, cap_all / (n * c.n_layers));
  }
  // Per layer: its expected active neurons and its rows (MemoryPlan gives
  // rows in proportion to the first, so the layers fill alike).
  double active_sum = 0, added_sum = 0, cap_sum = 0, reads = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    const double f = predicted && frac > 0 ? m.predictor.layers[l].predicted_fraction : plan.active_fraction;
    const double active = f * n;
    const double cap = l < static_cast<int>(memory.capacities.size()) ? memory.capacities[l]
                                                                       : memory.capacity;
    active_sum += active;
    added_sum += std::max(1.0, active * plan.churn);
    cap_sum += cap;
    // Neurons read: what the window misses, plus what does not fit.
    if (curves) {
      reads += MissesAt(m.predictor.layers[l].lru_misses, cap / n) * n;
    } else if (c.moe()) {
      // Before any run, routing is taken as uniform and independent from
      // token to token: an LRU matrix holding cap / n of the experts then
      // hits that share of them. Skewed or persistent routing (trained
      // routers) hits more; the prediction errs towards slow.
      reads += active * (1 - std::min(1.0, cap / n));
    } else if (cap < n) {
      reads += active <= cap ? active * plan.churn : (active - cap) + cap * plan.churn;
    }
  }
  // k: the tokens whose new neurons (churn x active each) the matrix can hold,
  // 1..8. Rows are preallocated and eviction under pressure is least recently
  // used, so a longer window never reads more; it only stops the matrix from
  // dropping neurons early (measured on the synthetic OPT-6.7B at 50%: bytes
  // per token 112, 105, 100, 98 MiB for k = 1, 2, 4, 8).
  plan.window = o.window > 0 ? o.window
                             : static_cast<int>(std::clamp(std::floor(cap_sum / added_sum), 1.0, 8.0));
  if (c.moe()) {
    // Popular experts return every few tokens, not every token: a window
    // drops them between uses and LRU evicts them for one-off experts. The
    // rows keep what was used most lately instead, and nothing leaves just
    // for being older than k tokens.
    plan.frequency_half_life = kExpertUseHalfLife;
    if (o.window == 0) plan.window = 8;
  }
  const double active = active_sum / c.n_layers;
  const double stride = m.bundle.record_stride;
  plan.weight_bytes_per_token = ResidentWeightBytesPerToken(m);
  TokenWorkload& w = plan.expected;
  w.read_ops = reads;  // one request per neuron at this sparsity
  w.read_batches = reads > 0 ? c.n_layers : 0;  // each layer waits for its own misses
  w.device_bytes = reads * stride;
  if (c.moe()) {  // a routed expert is a run of records: requests of up to max_read_bytes
    w.read_ops = std::ceil(w.device_bytes / std::max<double>(1, memory.io.max_read_bytes));
  }
  w.queue_depth = o.queue_depth;
  w.weight_bytes = plan.weight_bytes_per_token;
  w.weight_bytes[DTypeName(m.ffn_dtype)] += active * c.n_layers * stride;
  const DType pdt = PredictorDType(m);
  w.predictor_dtype = DTypeName(pdt);
  if (m.predictor.present) {
    for (const auto& l : m.predictor.layers) {
      w.predictor_bytes += BytesPerElement(pdt) * l.rank * (c.dim + n) * (c.ffn_gated ? 2 : 1);
    }
  }
  w.moved_bytes = reads * stride;  // each deletion moves about one row
  plan.estimate = EstimateTokenCost(profile, w);
  const double read_size = c.moe() ? std::min<double>(memory.io.max_read_bytes, c.ExpertDim() * stride) : stride;
  plan.floor_ms = FloorMs(profile, w.device_bytes, read_size, o.queue_depth, w.WeightBytes());
  return plan;
}

}  // namespace llmflash
