// Umbrella header: everything a user of llmflash needs.
#ifndef LLMFLASH_LLMFLASH_H_
#define LLMFLASH_LLMFLASH_H_

#include "llmflash/convert.h"
#include "llmflash/model.h"
#include "llmflash/options.h"
#include "llmflash/profile.h"
#include "llmflash/stats.h"
#include "llmflash/status.h"

#endif  // LLMFLASH_LLMFLASH_H_
