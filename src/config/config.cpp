#include "config/config.hpp"
// The model is plain data; this file anchors the target.
