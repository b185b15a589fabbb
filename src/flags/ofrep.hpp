// flags/ofrep.hpp: the OpenFeature Remote Evaluation Protocol's answers (OFREP v1), pure:
// the gateway's listener authenticates the tenant and calls these.
//
//   POST /ofrep/v1/evaluate/flags/{key}   one flag: 200 {key, reason, variant, value, metadata},
//       404 FLAG_NOT_FOUND, 400 INVALID_CONTEXT or GENERAL {key, errorCode, errorDetails}
//   POST /ofrep/v1/evaluate/flags         every flag: 200 {flags: [...]} with an ETag; 304 when
//       If-None-Match names the same answer
//
// The request body is {"context": {...}}. The authenticated tenant is set as the context's
// `tenant` (a client cannot choose it). Only the application's flags are served: release
// flags and kill switches are the gateway's own and answer FLAG_NOT_FOUND.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "flags/flagset.hpp"

namespace sluice::flags::ofrep {

struct Answer {
  int status = 200;
  std::string body;  // JSON (empty for 304)
  std::string etag;  // bulk answers only
};

Answer evaluate_one(const FlagSet& set, std::string_view key, std::string_view body, std::string_view tenant,
                    int64_t now_s);
Answer evaluate_all(const FlagSet& set, std::string_view body, std::string_view tenant,
                    std::string_view if_none_match, int64_t now_s);
// {"errorCode": ..., "errorDetails": ...} for errors outside an evaluation (auth, method).
std::string error_body(std::string_view code, std::string_view details);

}  // namespace sluice::flags::ofrep
