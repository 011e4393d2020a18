// Symbol visibility for the llmflash library: it is compiled with hidden
// visibility and exports only what is marked LLMFLASH_EXPORT.
#ifndef LLMFLASH_EXPORT_H_
#define LLMFLASH_EXPORT_H_

#define LLMFLASH_EXPORT [[gnu::visibility("default")]]

#endif  // LLMFLASH_EXPORT_H_
