// control/flags.hpp: feature flags (flagd's format, flags/flagd.hpp) and kill switches as the
// admin API and the CLI both manage them (`sluice flag ...`, `sluice kill ...`), and the flags
// a gateway publishes. Every change is checked whole before anything is written — the flag
// parses (errors "line:column: what") and means something valid to the gateway
// (flags::check_role: a release flag's variants name releases of its route) — then written in
// one transaction with its audit entries. A refused change leaves the running flags as they
// were. Change results are JSON with "changed": false when the store already held that.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "control/releases.hpp"
#include "flags/flagd.hpp"
#include "store/store.hpp"

namespace sluice::control {

// Every stored flag, parsed, by key. A stored definition that no longer parses is left out
// and named in `error` (one line each); the others still load.
std::vector<flags::Flag> load_flags(store::Store& s, std::string& error);

// {"flags":[{key, state, kind, route, tool, default_variant, targeted, owner, purpose,
// version, updated_at, updated_by}]}
std::string list_flags_json(store::Store& s);
// One flag: the summary above, created_at and its "definition".
Result show_flag(store::Store& s, const std::string& key);

// Creates or replaces one flag from its definition (JSON or YAML: the object under flags.KEY
// of a flag file). Audited as flag.set with the definitions before and after.
Result set_flag(store::Store& s, const std::string& key, const std::string& definition, const std::string& actor,
                const std::string& reason);
// State changes only (flag.enable / flag.disable); the rest of the definition stays.
Result enable_flag(store::Store& s, const std::string& key, const std::string& actor, const std::string& reason);
Result disable_flag(store::Store& s, const std::string& key, const std::string& actor, const std::string& reason);
Result delete_flag(store::Store& s, const std::string& key, const std::string& actor, const std::string& reason);

// Imports a whole flagd file (JSON or YAML): the flag set's metadata joins each flag's own
// (the flag's keys win, as flagd reads it). "merge" creates and updates the file's flags;
// "replace" also deletes every stored flag the file does not have (kill switches included).
// The file is refused whole on any error; one write, one flag.import audit entry per changed
// flag, nothing written when nothing changes. Reports created/updated/unchanged/deleted.
Result import_flags(store::Store& s, const std::string& file_text, const std::string& mode, const std::string& actor,
                    const std::string& reason);
// Every stored flag as one flagd file, by key (what import reads back unchanged).
std::string export_flags(store::Store& s);

// Kill switches (flags/flagset.hpp gives their meaning), one command each, audited as
// kill.<kind>; each writes an ENABLED flag owned by `actor` with `reason` as its purpose:
//   kill.route.<R>          variants off|block|fallback|static, default `mode`
//   kill.tool.<R>.<T>       {"on": true, "off": false}, default "on"
//   kill.shadow.<R or all>  the same
//   kill.rollouts           the same
// Route "*" (every route) is written "all" in the key.
Result kill_route(store::Store& s, const std::string& route, const std::string& mode, const std::string& actor,
                  const std::string& reason);
Result kill_tool(store::Store& s, const std::string& route, const std::string& tool, const std::string& actor,
                 const std::string& reason);
// `route` "" or "*": every route.
Result kill_shadow(store::Store& s, const std::string& route, const std::string& actor, const std::string& reason);
Result kill_rollouts(store::Store& s, const std::string& actor, const std::string& reason);
// Turns a kill switch off (state DISABLED; the flag stays, for the record). kill.clear.
Result kill_clear(store::Store& s, const std::string& key, const std::string& actor, const std::string& reason);
// {"kills":[{key, kind, route, tool, mode, state, on, targeted, owner, purpose, updated_at, updated_by}]}
std::string kills_json(store::Store& s);

// Flags to clean up: fully ramped (no targeting, so every evaluation gets one variant; a
// top-level `fractional` giving one variant all the weight; disabled) or unchanged for longer
// than `older_than_ms` (0: age not considered), each with its owner, purpose and why it is
// listed. Kill switches are listed for their age only (they are static by design).
std::string stale_flags_json(store::Store& s, int64_t older_than_ms, int64_t now_ms);

}  // namespace sluice::control
