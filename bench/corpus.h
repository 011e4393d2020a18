// The benchmark's default workload text, compiled into llmflash-bench so
// that it runs the same text wherever it is installed.
#ifndef LLMFLASH_BENCH_CORPUS_H_
#define LLMFLASH_BENCH_CORPUS_H_

namespace llmflash::tools {

const char* DefaultCorpus();

}  // namespace llmflash::tools

#endif  // LLMFLASH_BENCH_CORPUS_H_
