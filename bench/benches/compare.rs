//! `cargo bench -p keras2src-bench`: the whole suite (see README.md, "Benchmarks").
//! tract runs in-process here (it is a dev-dependency); everything else is in the
//! harness library.

use keras2src_bench::report::Versions;
use keras2src_bench::suite::{self, InProcess};
use keras2src_bench::{machine, Settings};

mod tract_engine {
    use std::hint::black_box;
    use std::path::Path;
    use std::time::Instant;

    use keras2src_bench::engine::Engine;
    use keras2src_bench::fixture::Fixture;
    use tract_onnx::prelude::*;

    type State = tract_onnx::tract_core::internal::TypedSimpleState;

    /// tract on `bench/models/<fixture>.onnx`, the input fixed to batch 1 and the
    /// fixture's shape, optimized; one spawned state reused for every call.
    pub struct Tract {
        state: State,
        input: TValue,
    }

    pub fn start(path: &Path, fixture: &Fixture) -> Result<Box<dyn Engine>, String> {
        let shape: Vec<usize> = std::iter::once(1)
            .chain(fixture.input_shape.iter().copied())
            .collect();
        let load = || -> TractResult<Tract> {
            let plan = tract_onnx::onnx()
                .model_for_path(path)?
                .with_input_fact(0, f32::fact(&shape).into())?
                .into_optimized()?
                .into_runnable()?;
            let state = plan.spawn()?;
            let input = Tensor::from_shape(&shape, &fixture.input)?.into_tvalue();
            Ok(Tract { state, input })
        };
        load()
            .map(|t| Box::new(t) as Box<dyn Engine>)
            .map_err(|e| format!("{e:#}"))
    }

    impl Tract {
        fn predict(&mut self) -> TractResult<TVec<TValue>> {
            self.state.run(tvec!(black_box(&self.input).clone()))
        }
    }

    impl Engine for Tract {
        fn output(&mut self) -> Result<Vec<f32>, String> {
            let outputs = self.predict().map_err(|e| format!("{e:#}"))?;
            let values = outputs[0]
                .to_plain_array_view::<f32>()
                .map_err(|e| format!("{e:#}"))?;
            Ok(values.iter().copied().collect())
        }

        fn time(&mut self, n: u64) -> Result<u64, String> {
            let start = Instant::now();
            for _ in 0..n {
                black_box(self.predict().map_err(|e| format!("{e:#}"))?);
            }
            Ok(start.elapsed().as_nanos() as u64)
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported (use
    // KERAS2SRC_BENCH_MODELS).
    let settings = Settings::from_env();
    // Probed first: the load average before the suite adds its own.
    let machine = machine::Machine::probe();
    let tract_version = machine::locked_version("tract-onnx");
    let in_process = [InProcess {
        key: "tract",
        ext: "onnx",
        label: "tract".into(),
        start: &tract_engine::start,
    }];
    let results = suite::run(&settings, &in_process);
    let versions = Versions {
        tract: tract_version,
    };
    if let Err(e) = keras2src_bench::write_report(&settings, &machine, &results, &versions) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
