# keras2src_add_model(): generate a Keras model's C++ header as a build step of a target.
#
#   include(path/to/Keras2Src.cmake)        # or list(APPEND CMAKE_MODULE_PATH ...) + include(Keras2Src)
#   add_executable(app main.cpp)
#   keras2src_add_model(TARGET app MODEL models/net.keras NAME net
#                       [CONFIG arch.json] [OUTPUT_DIR dir] [SCOPE PRIVATE|PUBLIC|INTERFACE]
#                       [OPTIONS --scratch static --extern-c ...])
#
# Writes NAME.hpp (a::b gives a_b.hpp) into OUTPUT_DIR (default
# ${CMAKE_CURRENT_BINARY_DIR}/keras2src), adds it to TARGET's sources and OUTPUT_DIR to its
# include directories, so the code does #include "NAME.hpp". The header is regenerated
# when the model file, CONFIG or the keras2src executable changes. OPTIONS go to
# `keras2src generate` as they are (not --lang, --name or -o).
#
# Large models keep their weights in NAME.hpp.weights.bin beside the header, which the
# header brings in with the assembler's .incbin (GCC and Clang on ELF targets): the
# function points KERAS2SRC_<NAME>_WEIGHTS_PATH at it, so -flto and Clang builds find it
# too. The header changes with the model (it carries the model's SHA-256), so everything
# that includes it is rebuilt and reads the new weights.
#
# The keras2src executable: the cache variable KERAS2SRC (-DKERAS2SRC=/path/to/keras2src),
# else found on PATH, in ~/.cargo/bin (cargo install) or in this repository's
# target/release (cargo build --release).
#
# Build the model optimised (CMAKE_BUILD_TYPE=Release, -O3): an unset build type compiles
# it without optimisation at all.

include_guard(GLOBAL)

set(_KERAS2SRC_MODULE_DIR "${CMAKE_CURRENT_LIST_DIR}")

function(_keras2src_find)
    if(KERAS2SRC AND EXISTS "${KERAS2SRC}")
        return()
    endif()
    if(KERAS2SRC AND NOT KERAS2SRC MATCHES "-NOTFOUND$")
        message(FATAL_ERROR
            "keras2src: KERAS2SRC is set to '${KERAS2SRC}', which does not exist. Point it "
            "at the executable: -DKERAS2SRC=/path/to/keras2src")
    endif()
    set(home "$ENV{HOME}")
    set(cargo_home "$ENV{CARGO_HOME}")
    find_program(KERAS2SRC keras2src
        HINTS "${_KERAS2SRC_MODULE_DIR}/../../target/release"
        PATHS "${cargo_home}/bin" "${home}/.cargo/bin"
        DOC "the keras2src executable")
    if(NOT KERAS2SRC)
        message(FATAL_ERROR
            "keras2src: the keras2src executable was not found on PATH, in ~/.cargo/bin or "
            "in keras2src's target/release. Build it (cargo build --release in the keras2src "
            "repository, or cargo install --path .) and configure with "
            "-DKERAS2SRC=/path/to/keras2src, or put it on PATH.")
    endif()
endfunction()

function(keras2src_add_model)
    cmake_parse_arguments(PARSE_ARGV 0 ARG "" "TARGET;MODEL;NAME;CONFIG;OUTPUT_DIR;SCOPE" "OPTIONS")
    foreach(required TARGET MODEL NAME)
        if(NOT ARG_${required})
            message(FATAL_ERROR "keras2src_add_model: ${required} is required")
        endif()
    endforeach()
    if(ARG_UNPARSED_ARGUMENTS)
        message(FATAL_ERROR "keras2src_add_model: unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
    endif()
    if(NOT TARGET "${ARG_TARGET}")
        message(FATAL_ERROR "keras2src_add_model: '${ARG_TARGET}' is not a target")
    endif()
    _keras2src_find()
    if(NOT ARG_OUTPUT_DIR)
        set(ARG_OUTPUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/keras2src")
    endif()
    if(NOT ARG_SCOPE)
        set(ARG_SCOPE PRIVATE)
    endif()
    get_filename_component(model "${ARG_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    get_filename_component(out_dir "${ARG_OUTPUT_DIR}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
    string(REPLACE "::" "_" stem "${ARG_NAME}")
    string(TOUPPER "${stem}" upper)
    set(header "${out_dir}/${stem}.hpp")
    set(weights "${out_dir}/${stem}.hpp.weights.bin")
    set(depends "${model}" "${KERAS2SRC}")
    set(config_args "")
    if(ARG_CONFIG)
        get_filename_component(config "${ARG_CONFIG}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
        list(APPEND depends "${config}")
        set(config_args --config "${config}")
    endif()
    add_custom_command(
        OUTPUT "${header}"
        BYPRODUCTS "${weights}"
        COMMAND "${CMAKE_COMMAND}" -E make_directory "${out_dir}"
        COMMAND "${KERAS2SRC}" generate "${model}" ${config_args} --lang cpp
                --name "${ARG_NAME}" ${ARG_OPTIONS} -o "${header}"
        DEPENDS ${depends}
        COMMENT "keras2src: generating ${stem}.hpp"
        VERBATIM)
    target_sources("${ARG_TARGET}" PRIVATE "${header}")
    target_include_directories("${ARG_TARGET}" ${ARG_SCOPE} "${out_dir}")
    target_compile_definitions("${ARG_TARGET}" ${ARG_SCOPE}
        "KERAS2SRC_${upper}_WEIGHTS_PATH=\"${weights}\"")

    get_property(multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
    get_property(warned GLOBAL PROPERTY _KERAS2SRC_BUILD_TYPE_WARNED)
    if(NOT multi_config AND NOT CMAKE_BUILD_TYPE AND NOT warned)
        set_property(GLOBAL PROPERTY _KERAS2SRC_BUILD_TYPE_WARNED TRUE)
        message(WARNING
            "keras2src: CMAKE_BUILD_TYPE is not set, so the generated model compiles without "
            "optimisation and runs many times slower. Configure with "
            "-DCMAKE_BUILD_TYPE=Release.")
    endif()
endfunction()
