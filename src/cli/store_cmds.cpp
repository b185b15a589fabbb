#include "cli/store_cmds.hpp"
#include "cli/common.hpp"
#include "cli/incident_cmds.hpp"

#include <simdjson.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "control/bundle.hpp"
#include "control/releases.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "net/http_client.hpp"
#include "store/backup.hpp"
#include "store/store.hpp"

namespace sluice::cli {

std::function<int()> add_store_commands(CLI::App& app) {
  auto common = std::make_shared<Common>();
  auto runner = std::make_shared<std::function<int()>>();
  auto with_common = [common](CLI::App* c) { add_common_options(c, *common); };

  auto* rel = app.add_subcommand("release", "create and inspect releases");
  rel->require_subcommand(1);
  auto manifest = std::make_shared<std::string>();
  auto* create = rel->add_subcommand("create", "store a release from a manifest; prints its id");
  create->add_option("manifest", *manifest, "release manifest (YAML)")->required();
  with_common(create);
  create->callback([=] {
    *runner = [=] {
      auto s = open(*common);
      if (!s) return 2;
      return print(control::create_release(*s, *manifest, common->actor.empty() ? default_actor() : common->actor));
    };
  });
  auto route_filter = std::make_shared<std::string>();
  auto* list = rel->add_subcommand("list", "list releases");
  list->add_option("--route", *route_filter, "only this route");
  with_common(list);
  list->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "GET", "/admin/v1/releases" + (route_filter->empty() ? std::string() : "?route=" + *route_filter));
      auto s = open(*common);
      return s ? print(control::list_releases_text(*s, *route_filter)) : 2;
    };
  });
  auto id = std::make_shared<std::string>(), id2 = std::make_shared<std::string>();
  auto* show = rel->add_subcommand("show", "the whole tuple, a prompt preview and lineage");
  show->add_option("id", *id, "release id (or a unique prefix)")->required();
  with_common(show);
  show->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "GET", "/admin/v1/releases/" + *id);
      auto s = open(*common);
      return s ? print(control::show_release_text(*s, *id)) : 2;
    };
  });
  auto* diff = rel->add_subcommand("diff", "field-by-field difference of two releases");
  diff->add_option("a", *id, "release id")->required();
  diff->add_option("b", *id2, "release id")->required();
  with_common(diff);
  diff->callback([=] {
    *runner = [=] {
      auto s = open(*common);
      return s ? print(control::diff_releases_text(*s, *id, *id2)) : 2;
    };
  });

  // Moving a release between environments with its evidence (control/bundle.hpp).
  auto bundle_dir = std::make_shared<std::string>();
  auto environment = std::make_shared<std::string>();
  auto key_file = std::make_shared<std::string>();
  auto require_signature = std::make_shared<bool>(false);
  // The bundle key: --key-file, else $SLUICE_BUNDLE_KEY; "" when neither (unsigned).
  auto bundle_key = [key_file](std::string& key) {
    if (key_file->empty()) {
      const char* k = std::getenv("SLUICE_BUNDLE_KEY");
      key = k ? k : "";
      return true;
    }
    std::ifstream in(*key_file, std::ios::binary);
    if (!in) return false;
    key.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    return !key.empty();
  };
  auto* exp = rel->add_subcommand("export", "write RELEASE, its files and its eval runs to a bundle directory");
  exp->add_option("id", *id, "release id (or a unique prefix)")->required();
  exp->add_option("--out", *bundle_dir, "bundle directory to create (must be new or empty)")->required();
  exp->add_option("--environment", *environment, "the environment this store serves (default $SLUICE_ENVIRONMENT)");
  exp->add_option("--key-file", *key_file, "sign with this key (default $SLUICE_BUNDLE_KEY; none: unsigned)");
  with_common(exp);
  exp->callback([=] {
    *runner = [=] {
      control::ExportOptions o;
      o.release = *id;
      o.out_dir = *bundle_dir;
      const char* env = std::getenv("SLUICE_ENVIRONMENT");
      o.environment = !environment->empty() ? *environment : env ? env : "";
      o.actor = common->actor.empty() ? default_actor() : common->actor;
      if (!bundle_key(o.key)) return print({"cannot read key file " + *key_file, ""});
      auto s = open(*common);
      return s ? print(control::export_release(*s, o)) : 2;
    };
  });
  auto import_options = [=] {
    control::ImportOptions o;
    o.dir = *bundle_dir;
    o.actor = common->actor.empty() ? default_actor() : common->actor;
    o.require_signature = *require_signature;
    return o;
  };
  for (const char* verb : {"import", "verify"}) {
    const bool store_it = std::string(verb) == "import";
    auto* c = rel->add_subcommand(verb, store_it ? "verify a bundle, then store its release and eval runs here"
                                                 : "check a bundle (every hash, the release id, the signature)");
    c->add_option("dir", *bundle_dir, "bundle directory (sluice release export)")->required();
    c->add_option("--key-file", *key_file, "verify the signature with this key (default $SLUICE_BUNDLE_KEY)");
    c->add_flag("--require-signature", *require_signature, "refuse an unsigned bundle");
    with_common(c);
    c->callback([=] {
      *runner = [=] {
        control::ImportOptions o = import_options();
        if (!bundle_key(o.key)) return print({"cannot read key file " + *key_file, ""});
        if (!store_it) return print(control::verify_bundle(o));
        auto s = open(*common);
        return s ? print(control::import_release(*s, o)) : 2;
      };
    });
  }

  auto* route = app.add_subcommand("route", "routes and their stable releases");
  route->require_subcommand(1);
  auto route_name = std::make_shared<std::string>(), reason = std::make_shared<std::string>();
  auto* promote = route->add_subcommand("promote", "make RELEASE the stable release of ROUTE");
  promote->add_option("route", *route_name, "route name")->required();
  promote->add_option("release", *id, "release id")->required();
  promote->add_option("--reason", *reason, "why (audited)");
  with_common(promote);
  promote->callback([=] {
    *runner = [=] {
      if (common->remote())
        return remote_call(*common, "POST", "/admin/v1/routes/" + *route_name + "/promote",
                           "{\"release\":" + json_str(*id) + ",\"reason\":" + json_str(*reason) + "}");
      auto s = open(*common);
      if (!s) return 2;
      auto r = s->get_release(*id);
      if (!r) return print({"no release " + *id, ""});
      auto out = s->promote(*route_name, r->id, common->actor.empty() ? default_actor() : common->actor, *reason);
      return print({out.error, *route_name + ": " + (out.before.empty() ? "-" : out.before) + " -> " + out.after});
    };
  });
  auto above = std::make_shared<double>(-1);
  auto no_approval = std::make_shared<bool>(false);
  auto* policy = route->add_subcommand("policy", "rollout policy of ROUTE, applied to every rollout of it");
  policy->add_option("route", *route_name, "route name")->required();
  auto suite = std::make_shared<std::string>();
  auto* above_opt = policy->add_option(
      "--require-approval-above", *above,
      "an approval step before any rollout step above this weight (percent; default " +
          num_text(store::kDefaultApprovalAbove) + ": sign-off before full exposure)");
  auto* none_opt = policy->add_flag("--no-approval", *no_approval,
                                    "opt this route out of sign-off: rollouts may reach 100% unattended (needs --reason)");
  none_opt->excludes(above_opt);
  policy->add_option("--eval-suite", *suite, "a rollout candidate needs a passing eval run of this suite (its name)");
  auto evidence_env = std::make_shared<std::string>();
  auto evidence_suites = std::make_shared<std::vector<std::string>>();
  policy->add_option("--evidence-environment", *evidence_env,
                     "a rollout also needs the release's passing runs from this environment (imported with its "
                     "bundle: sluice release import); \"none\" clears it");
  policy->add_option("--evidence-suites", *evidence_suites,
                     "suites that must have passed there, comma-separated (e.g. gsm8k,smoke; default: any)")
      ->delimiter(',');
  policy->add_option("--reason", *reason, "why (audited)");
  with_common(policy);
  policy->callback([=] {
    *runner = [=] {
      if (*no_approval && reason->empty()) return print({"--no-approval needs --reason (it is audited)", ""});
      auto s = open(*common);
      if (!s) return 2;
      store::RoutePolicy p = s->get_route_policy(*route_name).value_or(store::RoutePolicy{});
      p.route = *route_name;
      if (*no_approval) p.require_approval_above = store::kNoApproval;
      else if (*above >= 0) p.require_approval_above = *above;
      if (!suite->empty()) p.eval_suite = *suite;
      if (*evidence_env == "none") p.evidence_environment.clear(), p.evidence_suites.clear();
      else if (!evidence_env->empty()) p.evidence_environment = *evidence_env;
      if (!evidence_suites->empty()) p.evidence_suites = *evidence_suites;
      if (p.evidence_environment.empty() && !p.evidence_suites.empty())
        return print({"--evidence-suites needs --evidence-environment", ""});
      p.updated_by = common->actor.empty() ? default_actor() : common->actor;
      auto out = s->set_route_policy(p, *reason);
      double a = p.require_approval_above;
      std::string text = *route_name + ": " +
                         (a <= 100 ? "rollouts need approval before any step above " + num_text(a) + "%"
                                   : std::string("no approval required (opted out)")) +
                         (p.eval_suite.empty() ? "; any passing eval run"
                                               : "; candidates must pass eval suite '" + p.eval_suite + "'");
      if (!p.evidence_environment.empty()) {
        std::string suites;
        for (const auto& x : p.evidence_suites) suites += (suites.empty() ? "" : ", ") + x;
        text += "; and must have passed " + (suites.empty() ? std::string("an eval suite") : suites) +
                " in environment '" + p.evidence_environment + "'";
      }
      return print({out.error, text});
    };
  });
  auto* rlist = route->add_subcommand("list", "routes with their stable release");
  with_common(rlist);
  rlist->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "GET", "/admin/v1/routes");
      auto s = open(*common);
      if (!s) return 2;
      std::string out;
      for (const auto& r : s->list_routes()) out += r.name + "  " + r.stable_release + "\n";
      return print({"", out.empty() ? "no routes\n" : out});
    };
  });

  auto* rb = app.add_subcommand("rollback", "switch ROUTE back to its previous stable release now");
  rb->add_option("route", *route_name, "route name")->required();
  rb->add_option("--reason", *reason, "why (audited)");
  auto check_only = std::make_shared<bool>(false);
  rb->add_flag("--check", *check_only,
               "change nothing: probe the release a rollback would go to (exit 0 ready, 1 not; needs --admin)");
  with_common(rb);
  rb->callback([=] {
    *runner = [=] {
      if (*check_only) return rollback_check(*common, *route_name);
      if (common->remote())
        return remote_call(*common, "POST", "/admin/v1/routes/" + *route_name + "/rollback",
                           "{\"reason\":" + json_str(*reason) + "}");
      auto s = open(*common);
      if (!s) return 2;
      std::string actor = common->actor.empty() ? default_actor() : common->actor;
      if (auto ro = s->active_rollout(*route_name)) {
        // A rollout in progress: rolling back is aborting it (the stable release never changed).
        auto q = s->add_rollout_command({0, ro->id, "abort", actor, reason->empty() ? "rollback" : *reason, 0});
        return print({q.error, *route_name + ": rollout " + ro->id + " aborted; all traffic returns to " +
                                   ro->stable_release + " (a running gateway applies it within 50 ms)"});
      }
      auto out = s->rollback(*route_name, actor, *reason);
      return print({out.error, *route_name + ": " + out.before + " -> " + out.after + " (rolled back)"});
    };
  });

  auto limit = std::make_shared<int>(50);
  auto* audit = app.add_subcommand("audit", "the audit log, newest first (JSON)");
  audit->add_option("--limit", *limit, "entries (default 50)");
  with_common(audit);
  audit->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "GET", "/admin/v1/audit?limit=" + std::to_string(*limit));
      auto s = open(*common);
      return s ? print({"", control::audit_json(*s, static_cast<size_t>(*limit))}) : 2;
    };
  });

  auto* ups = app.add_subcommand("upstreams",
                                 "a running gateway's upstreams: breaker state, since when, why, next probe, load (JSON)");
  with_common(ups);
  ups->callback([=] {
    *runner = [=] {
      if (!common->remote())
        return print({"upstream health lives in a running gateway: pass --admin http://HOST:PORT (or SLUICE_ADMIN_URL)", ""});
      return remote_call(*common, "GET", "/admin/v1/upstreams");
    };
  });

  auto since = std::make_shared<std::string>(), request = std::make_shared<std::string>();
  auto* logs = app.add_subcommand("logs", "query the request log: which release and prompt served what");
  logs->add_option("--route", *route_filter, "only this route");
  logs->add_option("--release", *id, "only this release");
  logs->add_option("--since", *since, "only the last 90s / 30m / 1h / 2d");
  logs->add_option("--request", *request, "one request id: print its whole lineage");
  with_common(logs);
  logs->callback([=] {
    *runner = [=] {
      int64_t since_ms = -1;
      if (!since->empty() && (since_ms = parse_duration_ms(*since)) < 0) return print({"--since expects e.g. 90s, 30m, 1h, 2d", ""});
      int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
      std::ifstream in(common->data_dir + "/requests.jsonl");
      if (!in) return print({"no request log in " + common->data_dir, ""});
      simdjson::dom::parser p;
      std::string line;
      int matched = 0;
      while (std::getline(in, line)) {
        simdjson::dom::element e;
        if (p.parse(line).get(e)) continue;
        auto field = [&](const char* k) -> std::string {
          std::string_view v;
          return e[k].get_string().get(v) ? std::string() : std::string(v);
        };
        if (!request->empty() && field("request_id") != *request) continue;
        if (!route_filter->empty() && field("route") != *route_filter) continue;
        if (!id->empty() && field("release") != *id && !starts_with(field("release"), *id)) continue;
        int64_t ts = 0;
        if (e["ts"].get_int64().get(ts)) ts = 0;
        if (since_ms > 0 && ts < now - since_ms) continue;
        ++matched;
        if (!request->empty()) {
          std::cout << "request   " << field("request_id") << "\nroute     " << field("route") << "\nrelease   "
                    << field("release") << "\nprompt    " << field("prompt") << "\nmodel     " << field("upstream_model")
                    << " (upstream " << field("upstream") << ")\nadapter   " << field("adapter") << "\nindex     "
                    << field("index_version") << "\ntenant    " << field("tenant") << "\n";
          int64_t status = 0;
          if (e["status"].get_int64().get(status)) status = 0;
          std::cout << "status    " << status << "\nlog line  " << line << "\n";
        } else {
          std::cout << line << "\n";
        }
      }
      if (matched == 0) return print({"no matching requests", ""});
      return 0;
    };
  });
  // store backup / restore / verify: the SQLite store, online (store/backup.hpp).
  auto* st = app.add_subcommand("store", "back up, restore and verify the store");
  st->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  // PostgreSQL is backed up with its own tools: say so instead of copying anything.
  auto sqlite_only = [](const std::string& where) {
    if (!store::is_postgres_url(where)) return true;
    std::cerr << "error: the store is PostgreSQL (" << store::redact_location(where)
              << "): back it up with pg_dump -Fc and restore with pg_restore, or use base backups with WAL "
                 "archiving for point-in-time recovery; see docs/replicas.md (\"Backing up PostgreSQL\")\n";
    return false;
  };
  auto print_summary = [](const std::string& err, const std::string& what, const store::BackupSummary& sum) {
    if (!err.empty()) {
      std::cerr << "error: " << err << "\n";
      return 1;
    }
    std::cout << what << store::summary_text(sum);
    return 0;
  };
  auto* bk = st->add_subcommand("backup", "copy the SQLite store to DEST while gateways keep serving and writing");
  bk->add_option("dest", *file, "backup file to create (must not exist); DEST.sha256 is written beside it")->required();
  bk->add_option("--data-dir", common->data_dir, "state directory (default ./sluice-data)");
  bk->add_option("--store", common->store, "the store (default $SLUICE_STORE_URL, then DATA_DIR/sluice.db)");
  bk->callback([=] {
    *runner = [=] {
      const std::string where = store::store_location(common->store, common->data_dir);
      if (!sqlite_only(where)) return 2;
      store::BackupSummary sum;
      std::string err = store::backup_sqlite(where, *file, {}, sum);
      return print_summary(err, "backed up " + where + " to ", sum);
    };
  });
  auto* rs = st->add_subcommand("restore", "restore a SQLite backup as the store of a data directory");
  rs->add_option("backup", *file, "backup file (made by `sluice store backup`)")->required();
  rs->add_option("--data-dir", common->data_dir, "data directory to restore into (missing or empty unless --force)")
      ->required();
  rs->add_option("--store", common->store, "refused for a postgres:// URL (default $SLUICE_STORE_URL)");
  rs->add_flag("--force", *force, "replace the store of a data directory in use (stop its gateways first)");
  rs->callback([=] {
    *runner = [=] {
      const std::string where = store::store_location(common->store, common->data_dir);
      if (!sqlite_only(where)) return 2;
      if (where != common->data_dir + "/sluice.db")
        std::cerr << "warning: the store is configured at " << where << "; the backup is restored as "
                  << common->data_dir << "/sluice.db\n";
      store::BackupSummary sum;
      std::string err = store::restore_sqlite(*file, common->data_dir, *force, sum);
      return print_summary(err, "restored " + *file + " as ", sum);
    };
  });
  auto* vf = st->add_subcommand("verify", "check a backup: checksum, SQLite integrity, schema version, contents");
  vf->add_option("backup", *file, "backup file")->required();
  vf->callback([=] {
    *runner = [=] {
      store::BackupSummary sum;
      std::string err = store::verify_sqlite_backup(*file, sum);
      return print_summary(err, "", sum);
    };
  });
  return [runner] { return *runner ? (*runner)() : -1; };
}

}  // namespace sluice::cli
