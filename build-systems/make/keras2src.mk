# keras2src_model: generate a Keras model's C++ header as a make rule.
#
#   include path/to/keras2src.mk
#   $(eval $(call keras2src_model,NAME,MODEL,OUTDIR[,OPTIONS]))
#   app: main.cpp OUTDIR/NAME.hpp
#   	$(CXX) $(CXXFLAGS) $(KERAS2SRC_CPPFLAGS_NAME) -o $@ main.cpp
#
# Defines the rule OUTDIR/NAME.hpp: MODEL (and the keras2src executable), and
# KERAS2SRC_CPPFLAGS_NAME: -I OUTDIR, and the path of NAME.hpp.weights.bin for the
# header's .incbin when the model is large enough to keep its weights in a file (GCC and
# Clang on ELF targets; with it, -flto and Clang builds find the file too). NAME is an
# identifier (no a::b here). OPTIONS go to `keras2src generate` as they are (not --lang,
# --name or -o). The header changes with the model (it carries the model's SHA-256), so
# whatever depends on it is rebuilt and reads the new weights.
#
# The keras2src executable: KERAS2SRC=/path/to/keras2src, else keras2src on PATH, else
# this repository's target/release/keras2src (cargo build --release).
#
# Build the model optimised (-O3 or -O2; unoptimised, its loops run many times slower).

_keras2src_here := $(dir $(lastword $(MAKEFILE_LIST)))
KERAS2SRC ?= $(firstword $(shell command -v keras2src 2>/dev/null) \
    $(wildcard $(_keras2src_here)../../target/release/keras2src))
# A bare command name is looked up on PATH; the rules depend on the file itself.
_keras2src_bin = $(if $(findstring /,$(KERAS2SRC)),$(KERAS2SRC),$(shell command -v $(KERAS2SRC) 2>/dev/null))
_keras2src_upper = $(shell printf '%s' '$(1)' | tr 'a-z' 'A-Z')

define keras2src_model
$(if $(wildcard $(_keras2src_bin)),,$(error keras2src: the keras2src executable was not \
found ('$(KERAS2SRC)'): build it (cargo build --release in the keras2src repository, or \
cargo install --path .) and run make KERAS2SRC=/path/to/keras2src, or put it on PATH))
$(3)/$(1).hpp: $(2) $(_keras2src_bin)
	@mkdir -p $(3)
	$(_keras2src_bin) generate $(2) --lang cpp --name $(1) $(4) -o $(3)/$(1).hpp
KERAS2SRC_CPPFLAGS_$(1) := -I$(3) \
    -DKERAS2SRC_$(call _keras2src_upper,$(1))_WEIGHTS_PATH='"$(abspath $(3))/$(1).hpp.weights.bin"'
endef
