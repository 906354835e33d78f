//! `keras2src generate`: the language from `--lang` or the output's extension, the options,
//! then the source written (with progress and a summary), printed, or checked (`--check`).

use std::path::Path;
use std::process::ExitCode;

use keras2src::{Error, Lang, Options, ScratchPlacement, SelfTest, WeightsPlacement};

use super::progress::{thousands, Progress};
use crate::{GenerateArgs, LangArg, ScratchArg, TuneArg, WeightsArg};

pub fn run(args: GenerateArgs) -> Result<ExitCode, Error> {
    let lang = language(args.lang, args.output.as_deref())?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| keras2src::default_name(args.output.as_deref()));
    let progress = Progress::new(args.quiet);
    progress.step(format!("reading {}", args.source.model.display()));
    let model = args.source.load()?;
    for note in &model.graph.notes {
        progress.println(&format!("note: {note}"));
    }
    let weights = match (args.weights, &args.output) {
        (WeightsArg::File, None) => {
            return Err(Error::Usage(
                "--weights file needs -o (the weights file goes beside it)".into(),
            ))
        }
        (_, None) | (WeightsArg::Inline, _) => WeightsPlacement::Inline,
        (WeightsArg::File, Some(_)) => WeightsPlacement::File,
        (WeightsArg::Auto, Some(_)) => WeightsPlacement::Auto,
    };
    let options = Options {
        weights,
        scratch: args.scratch.map(|scratch| match scratch {
            ScratchArg::Stack => ScratchPlacement::Stack,
            ScratchArg::Caller => ScratchPlacement::Caller,
            ScratchArg::Static => ScratchPlacement::Static,
        }),
        extern_c: args.extern_c,
        stream: args.stream,
        tune: match args.tune {
            TuneArg::Host => keras2src::Tune::Host,
            TuneArg::Mcu => keras2src::Tune::Mcu,
        },
        self_test: args.emit_test.as_deref().map(SelfTest::read).transpose()?,
        weights_dtype: args.weights_dtype.dtype(),
        quantize: args.quantize.read(&model.input_port_shapes())?,
        ..Options::new(lang, &name)
    };
    let size = format!(
        "{}, {} layers, {} parameters",
        match lang {
            Lang::Rust => "Rust",
            Lang::Cpp => "C++",
            Lang::C => "C",
        },
        thousands(model.graph.nodes.len()),
        thousands(model.graph.keras_params())
    );
    progress.step(format!("generating {size}"));
    let generated = model.generate_with(&options)?;
    for note in &generated.notes {
        progress.println(&format!("note: {note}"));
    }
    let Some(path) = args.output else {
        progress.finish();
        return Ok(super::output::write(generated.source.as_bytes()));
    };
    if args.check {
        progress.step(format!("comparing with {}", path.display()));
        let report = super::check::report(&generated, &path);
        progress.finish();
        return Ok(match report {
            None => ExitCode::SUCCESS,
            Some(report) => {
                super::output::message(report.trim_end());
                ExitCode::from(1)
            }
        });
    }
    progress.step(format!("writing {}", path.display()));
    let written = generated.write(&path)?;
    progress.summary(&written, &size);
    Ok(ExitCode::SUCCESS)
}

/// `--lang`, or the language `output`'s extension names; they must agree.
fn language(lang: Option<LangArg>, output: Option<&Path>) -> Result<Lang, Error> {
    let extension = output
        .and_then(Path::extension)
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let shown = || output.map(|p| p.display().to_string()).unwrap_or_default();
    let named = match extension.as_deref() {
        Some("rs") => Some(LangArg::Rust),
        Some("hpp" | "hh" | "hxx") => Some(LangArg::Cpp),
        _ => None,
    };
    let c_family = matches!(
        extension.as_deref(),
        Some("h" | "hpp" | "hh" | "hxx" | "c" | "cc" | "cpp" | "cxx")
    );
    let usage = |message: String| Err(Error::Usage(message));
    let lang = match (lang, named) {
        (Some(lang @ (LangArg::Cpp | LangArg::C)), Some(LangArg::Rust)) => {
            let (name, what, ext) = match lang {
                LangArg::C => ("c", "C", "h"),
                _ => ("cpp", "C++", "hpp"),
            };
            return usage(format!(
                "--lang {name} writes a {what} header, but -o {} is a Rust file: use -o \
                 NAME.{ext}, or --lang rust",
                shown()
            ));
        }
        (Some(LangArg::Rust), _) if c_family => {
            return usage(format!(
                "--lang rust writes a Rust module, but -o {} is a C/C++ file: use -o NAME.rs, \
                 or --lang cpp or --lang c",
                shown()
            ))
        }
        (Some(LangArg::C), _) if extension.as_deref() != Some("h") && c_family => {
            return usage(format!(
                "--lang c writes a C header, but -o {} is not one: use -o NAME.h (one C file \
                 then defines KERAS2SRC_NAME_IMPLEMENTATION and includes it)",
                shown()
            ))
        }
        (Some(lang), _) | (None, Some(lang)) => lang,
        (None, None) if extension.as_deref() == Some("h") => {
            return usage(format!(
                "-o {}: a .h header could be C or C++, so say which with --lang c or \
                 --lang cpp (or name a C++ header .hpp)",
                shown()
            ))
        }
        (None, None) if output.is_some() => {
            return usage(format!(
                "cannot tell the language from -o {}: give --lang rust, --lang cpp or \
                 --lang c, or an output file ending in .rs or .hpp",
                shown()
            ))
        }
        (None, None) => {
            return usage(
                "give --lang rust, --lang cpp or --lang c (or -o FILE ending in .rs or .hpp, \
                 which names the language)"
                    .into(),
            )
        }
    };
    Ok(match lang {
        LangArg::Rust => Lang::Rust,
        LangArg::Cpp => Lang::Cpp,
        LangArg::C => Lang::C,
    })
}
