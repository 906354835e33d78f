//! One run of the suite: per model, every engine started, checked against Keras, then
//! timed in interleaved rounds.

use crate::engine::{Calibrated, Engine, Starter};
use crate::fixture::{self, Fixture};
use crate::ours::{self, Build};
use crate::report::{BuildCost, Costs, EngineResult, ModelResult, Status};
use crate::timing;
use crate::{peers, Settings};

/// An engine that runs inside the bench process (tract): its key, label and constructor.
pub struct InProcess<'a> {
    pub key: &'static str,
    /// Extension of its model files under bench/models/.
    pub ext: &'static str,
    pub label: String,
    pub start: &'a Starter,
}

/// A started engine waiting for its check and its rounds.
struct Running {
    result: EngineResult,
    engine: Box<dyn Engine>,
}

/// Runs every selected model; prints progress to stderr.
pub fn run(settings: &Settings, in_process: &[InProcess]) -> Vec<ModelResult> {
    let mut results = Vec::new();
    for (key, name) in fixture::MODELS {
        if let Some(keys) = &settings.models {
            if !keys.iter().any(|k| k == key) {
                continue;
            }
        }
        eprintln!("== {key} ({name})");
        let fixture = match Fixture::load(key, name) {
            Ok(f) => f,
            Err(why) => {
                eprintln!("   skipped: {why}");
                results.push(ModelResult::skipped(key, name, why));
                continue;
            }
        };
        results.push(run_model(settings, &fixture, in_process));
    }
    results
}

fn run_model(settings: &Settings, fixture: &Fixture, in_process: &[InProcess]) -> ModelResult {
    let dir = crate::work_dir().join(&fixture.name);
    let input = match std::fs::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|_| fixture.write_input(&dir))
    {
        Ok(p) => p,
        Err(why) => return ModelResult::skipped(&fixture.key, &fixture.name, why),
    };
    let mut result = ModelResult::skipped(&fixture.key, &fixture.name, String::new());
    result.skipped = None;
    let mut running = Vec::new();

    // Ours: generate once, build four ways.
    match ours::generate(fixture, &dir) {
        Ok(generation) => {
            result.macs = generation.macs;
            let mut costs = Costs::from_generation(&generation);
            for config in ours::CONFIGS {
                eprintln!("   building {}", config.label);
                match ours::build(&generation, config, &input) {
                    Ok(Build {
                        config,
                        compile_s,
                        sizes,
                        worker,
                    }) => {
                        costs.builds.push(BuildCost {
                            key: config.key.into(),
                            label: config.label.into(),
                            compile_s,
                            sizes,
                        });
                        running.push(Running {
                            result: EngineResult::new(config.key, config.label, None),
                            engine: Box::new(worker),
                        });
                    }
                    Err(why) => {
                        eprintln!("   {} failed: {why}", config.key);
                        result
                            .engines
                            .push(EngineResult::failed(config.key, config.label, why));
                    }
                }
            }
            result.costs = Some(costs);
        }
        Err(why) => {
            eprintln!("   generation failed: {why}");
            for config in ours::CONFIGS {
                result
                    .engines
                    .push(EngineResult::failed(config.key, config.label, why.clone()));
            }
        }
    }

    for extra in in_process {
        for model in fixture.peer_models(extra.ext) {
            let (key, label) = model.name(extra.key, &extra.label);
            let started = if model.path.exists() {
                (extra.start)(&model.path, fixture)
            } else {
                Err(format!("{} is missing", crate::shown(&model.path)))
            };
            match started {
                Ok(engine) => running.push(Running {
                    result: EngineResult::new(&key, &label, None),
                    engine,
                }),
                Err(why) => {
                    eprintln!("   {key} skipped: {why}");
                    result
                        .engines
                        .push(EngineResult::skipped(&key, &label, why));
                }
            }
        }
    }

    for peer in peers::PEERS {
        for model in fixture.peer_models(peer.ext) {
            let (key, label) = model.name(peer.key, peer.label);
            match peers::start(peer, &model, &settings.python, &input, &dir) {
                Ok(started) => running.push(Running {
                    result: EngineResult::new(&key, &label, Some(started.version)),
                    engine: Box::new(started.worker),
                }),
                Err(why) => {
                    eprintln!("   {key} skipped: {why}");
                    result
                        .engines
                        .push(EngineResult::skipped(&key, &label, why));
                }
            }
        }
    }

    // Agreement with Keras, then calibration, for every engine that started.
    let mut timed: Vec<(Running, u64)> = Vec::new();
    for mut r in running {
        let checked = r.engine.output().and_then(|got| {
            let (max_err, ok) = fixture::agreement(&got, &fixture.expected);
            if ok {
                timing::calibrate(r.engine.as_mut()).map(|n| (max_err, Some(n)))
            } else {
                Ok((max_err, None))
            }
        });
        match checked {
            Ok((max_err, Some(n))) => {
                r.result.max_abs_err = Some(max_err);
                timed.push((r, n));
            }
            Ok((max_err, None)) => {
                eprintln!(
                    "   {} disagrees with Keras: max abs error {max_err:e}",
                    r.result.key
                );
                r.result.max_abs_err = Some(max_err);
                r.result.status = Status::Disagrees;
                result.engines.push(r.result);
            }
            Err(why) => {
                eprintln!("   {} failed: {why}", r.result.key);
                r.result.status = Status::Failed(why);
                result.engines.push(r.result);
            }
        }
    }

    eprintln!(
        "   timing {} engines, {} rounds",
        timed.len(),
        settings.rounds
    );
    let (results, mut engines): (Vec<EngineResult>, Vec<Calibrated>) = timed
        .into_iter()
        .map(|(r, n)| (r.result, (r.engine, n)))
        .unzip();
    let samples = timing::interleave(&mut engines, settings.rounds);
    for ((mut r, (_, n)), s) in results.into_iter().zip(&engines).zip(samples) {
        r.status = match s {
            Ok(s) => Status::Timed {
                stats: s.stats(),
                calls_per_slice: *n,
            },
            Err(why) => Status::Failed(why),
        };
        result.engines.push(r);
    }
    result.sort_engines();
    result
}
