// DeviceProfile: interpolation, JSON load and save, the default location.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "format/json_reader.h"
#include "llmflash/profile.h"
#include "util/file.h"

namespace llmflash {
namespace {

constexpr int kProfileVersion = 1;

// Index i and weight w so that value ≈ (1-w)·v[i] + w·v[i+1] in log space.
template <typename T>
void Bracket(const std::vector<T>& v, double x, size_t* i, double* w) {
  if (v.size() < 2 || x <= static_cast<double>(v.front())) {
    *i = 0, *w = 0;
    return;
  }
  if (x >= static_cast<double>(v.back())) {
    *i = v.size() - 2, *w = 1;
    return;
  }
  size_t k = 0;
  while (static_cast<double>(v[k + 1]) < x) ++k;
  *i = k;
  *w = std::log(x / static_cast<double>(v[k])) / std::log(static_cast<double>(v[k + 1]) / v[k]);
}

}  // namespace

double DeviceProfile::ReadThroughput(double bytes, int queue_depth) const {
  if (chunk_bytes.empty() || queue_depths.empty()) return 1e9;
  size_t c, q;
  double wc, wq;
  Bracket(chunk_bytes, bytes, &c, &wc);
  Bracket(queue_depths, queue_depth, &q, &wq);
  auto at = [&](size_t ci, size_t qi) {
    ci = std::min(ci, chunk_bytes.size() - 1);
    qi = std::min(qi, queue_depths.size() - 1);
    return std::log(std::max(1.0, read_bytes_per_s[ci][qi]));
  };
  double lo = (1 - wq) * at(c, q) + wq * at(c, q + 1);
  double hi = (1 - wq) * at(c + 1, q) + wq * at(c + 1, q + 1);
  return std::exp((1 - wc) * lo + wc * hi);
}

double DeviceProfile::ReadSeconds(double ops, double bytes_per_read, int queue_depth) const {
  if (ops <= 0 || bytes_per_read <= 0) return 0;
  return ops * bytes_per_read / ReadThroughput(bytes_per_read, queue_depth);
}

double DeviceProfile::MatVecBytesPerSecond(const std::string& dtype) const {
  for (const std::string& t : {dtype, std::string("f16")}) {
    auto it = matvec_bytes_per_s.find(t);
    if (it != matvec_bytes_per_s.end() && it->second > 0) return it->second;
  }
  return 1e9;
}

CostEstimate EstimateTokenCost(const DeviceProfile& p, const TokenWorkload& w) {
  CostEstimate e;
  if (w.read_ops > 0) {
    const double size = w.device_bytes / w.read_ops;
    if (w.read_batches > 0) {
      // Each batch: one read's latency (QD 1), then the rest at the queue
      // depth the batch can fill.
      const double per_batch = w.read_ops / w.read_batches;
      const int depth = static_cast<int>(std::clamp(per_batch, 1.0, static_cast<double>(w.queue_depth)));
      e.io_ms = 1e3 * (w.read_batches * p.ReadSeconds(1, size, 1) +
                       p.ReadSeconds(std::max(0.0, w.read_ops - w.read_batches), size, depth));
    } else {
      e.io_ms = 1e3 * p.ReadSeconds(w.read_ops, size, w.queue_depth);
    }
  }
  e.memory_ms = 1e3 * w.moved_bytes / std::max(1.0, p.memcpy_bytes_per_s);
  e.predictor_ms = 1e3 * w.predictor_bytes / p.MatVecBytesPerSecond(w.predictor_dtype);
  for (const auto& [type, bytes] : w.weight_bytes) e.compute_ms += 1e3 * bytes / p.MatVecBytesPerSecond(type);
  e.total_ms = e.io_ms + e.memory_ms + e.predictor_ms + e.compute_ms -
               std::min(w.overlapped_ms, std::min(e.io_ms, e.compute_ms));
  return e;
}

double FloorMs(const DeviceProfile& p, double must_read_bytes, double read_size, int queue_depth,
               double weight_bytes) {
  double io = must_read_bytes > 0 ? 1e3 * must_read_bytes / p.ReadThroughput(read_size, queue_depth) : 0;
  double dram = 1e3 * weight_bytes / DramReadBytesPerSecond(p);
  return std::max(io, dram);
}

Status SaveDeviceProfile(const DeviceProfile& p, const std::string& path) {
  nlohmann::json j = {{"format", "llmflash-device-profile"},
                      {"version", kProfileVersion},
                      {"measured_file", p.measured_file},
                      {"chunk_bytes", p.chunk_bytes},
                      {"queue_depths", p.queue_depths},
                      {"read_bytes_per_s", p.read_bytes_per_s},
                      {"read_latency_us", p.read_latency_us},
                      {"memcpy_bytes_per_s", p.memcpy_bytes_per_s},
                      {"dram_read_bytes_per_s", p.dram_read_bytes_per_s},
                      {"matvec_bytes_per_s", p.matvec_bytes_per_s},
                      {"threads", p.threads},
                      {"quick", p.quick}};
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    out << j.dump(1) << "\n";
    if (!out) return Status::IOError(tmp + ": cannot write the device profile");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::IOError(path + ": cannot write the device profile");
  }
  return Status::OK();
}

StatusOr<DeviceProfile> LoadDeviceProfile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 1 << 20));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption(path + ": not valid JSON");
  JsonReader r(j, path);
  DeviceProfile p;
  std::string format;
  int version = 0;
  RETURN_IF_ERROR(r.String("format", &format));
  if (format != "llmflash-device-profile") return r.Bad("format", "is not \"llmflash-device-profile\"");
  RETURN_IF_ERROR(r.Int("version", kProfileVersion, kProfileVersion, &version));
  RETURN_IF_ERROR(r.String("measured_file", &p.measured_file));
  auto bad = [&](const std::string& what) { return Status::Corruption(path + ": " + what); };
  const nlohmann::json *chunks, *depths, *rates, *matvec;
  RETURN_IF_ERROR(r.Get("chunk_bytes", &chunks));
  RETURN_IF_ERROR(r.Get("queue_depths", &depths));
  RETURN_IF_ERROR(r.Get("read_bytes_per_s", &rates));
  RETURN_IF_ERROR(r.Get("matvec_bytes_per_s", &matvec));
  if (!chunks->is_array() || chunks->empty() || chunks->size() > 64) return bad("chunk_bytes must be a list of 1..64 sizes");
  if (!depths->is_array() || depths->empty() || depths->size() > 64) return bad("queue_depths must be a list of 1..64 depths");
  for (const auto& c : *chunks) {
    if (!c.is_number_unsigned() || c.get<uint64_t>() < 512 || c.get<uint64_t>() > (1ull << 30)) return bad("chunk_bytes: each must be in [512, 2^30]");
    if (!p.chunk_bytes.empty() && c.get<uint64_t>() <= p.chunk_bytes.back()) return bad("chunk_bytes must increase");
    p.chunk_bytes.push_back(c.get<uint64_t>());
  }
  for (const auto& q : *depths) {
    if (!q.is_number_unsigned() || q.get<uint64_t>() < 1 || q.get<uint64_t>() > 4096) return bad("queue_depths: each must be in [1, 4096]");
    if (!p.queue_depths.empty() && q.get<int>() <= p.queue_depths.back()) return bad("queue_depths must increase");
    p.queue_depths.push_back(q.get<int>());
  }
  if (!rates->is_array() || rates->size() != p.chunk_bytes.size()) return bad("read_bytes_per_s needs one row per chunk size");
  for (const auto& row : *rates) {
    if (!row.is_array() || row.size() != p.queue_depths.size()) return bad("read_bytes_per_s needs one value per queue depth in each row");
    std::vector<double> values;
    for (const auto& v : row) {
      if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>())) return bad("read_bytes_per_s: each must be a positive number");
      values.push_back(v.get<double>());
    }
    p.read_bytes_per_s.push_back(std::move(values));
  }
  auto positive = [&](const JsonReader& rr, const char* key, double* out) -> Status {
    float v = 0;
    RETURN_IF_ERROR(rr.Float(key, &v));
    if (!(v > 0) || !std::isfinite(v)) return rr.Bad(key, "must be a positive number");
    *out = v;
    return Status::OK();
  };
  RETURN_IF_ERROR(positive(r, "read_latency_us", &p.read_latency_us));
  RETURN_IF_ERROR(positive(r, "memcpy_bytes_per_s", &p.memcpy_bytes_per_s));
  if (j.contains("dram_read_bytes_per_s")) {  // absent from older profiles; 0: not measured
    float v = 0;
    RETURN_IF_ERROR(r.Float("dram_read_bytes_per_s", &v));
    if (!(v >= 0) || !std::isfinite(v)) return r.Bad("dram_read_bytes_per_s", "must be a number >= 0");
    p.dram_read_bytes_per_s = v;
  }
  JsonReader mv(*matvec, path + ": matvec_bytes_per_s");
  // f32, f16 and bf16 are in every profile; later types only in later ones.
  // A key this library does not know is kept (a newer profile) but unused.
  for (const char* key : {"f32", "f16", "bf16"}) RETURN_IF_ERROR(positive(mv, key, &p.matvec_bytes_per_s[key]));
  if (!matvec->is_object() || matvec->size() > 64) return r.Bad("matvec_bytes_per_s", "must be an object of rates");
  for (const auto& [key, value] : matvec->items()) {
    if (p.matvec_bytes_per_s.count(key) != 0) continue;
    RETURN_IF_ERROR(positive(mv, key.c_str(), &p.matvec_bytes_per_s[key]));
  }
  RETURN_IF_ERROR(r.Int("threads", 1, 4096, &p.threads));
  RETURN_IF_ERROR(r.Bool("quick", &p.quick));
  return p;
}

std::string DefaultDeviceProfilePath() {
  if (const char* p = std::getenv("LLMFLASH_DEVICE_PROFILE"); p != nullptr && *p) return p;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x) {
    return std::string(x) + "/llmflash/device.json";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home ? home : ".") + "/.cache/llmflash/device.json";
}

}  // namespace llmflash
