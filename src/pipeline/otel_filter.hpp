// pipeline/otel_filter.hpp: the OpenTelemetry filter (telemetry.otlp), last in the chain and
// only there when configured; see otel_filter.cpp.
#pragma once
#include <memory>
#include <string>

#include "otel/exporter.hpp"
#include "pipeline/filter.hpp"

namespace sluice::pipeline {

const Filter& otel_filter();
// The exporter telemetry.otlp asks for (header values `env:NAME` read now); null and `err`
// set when a header's variable is unset.
std::unique_ptr<otel::Exporter> make_exporter(const config::Otlp& o, std::string& err);

}  // namespace sluice::pipeline
