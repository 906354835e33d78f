//! One run of the suite: per model, every engine started, checked against Keras, then
//! timed in interleaved rounds.

use crate::engine::{Calibrated, Engine, Starter};
use crate::fixture::{self, Fixture, PeerModel};
use crate::ours::{self, Build};
use crate::report::{BuildCost, Costs, EngineResult, Int8Costs, ModelResult, Status};
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

/// What an engine's output is checked against before it is timed.
#[derive(Debug, Clone)]
enum Check {
    /// Keras's output, within 1e-5 + 1e-4 |keras|.
    Keras,
    /// Our int8 builds: the quantized interpreter's output, within the same bound (int8
    /// differs from Keras by design; the error against Keras is reported).
    Int8(Vec<f32>),
    /// LiteRT's int8 model: no bit-exact reference here (its kernels round differently
    /// from ours); as many outputs as Keras's, all finite. Its error against Keras is
    /// reported.
    Finite,
}

/// A started engine waiting for its check and its rounds.
struct Running {
    result: EngineResult,
    engine: Box<dyn Engine>,
    check: Check,
}

/// The key and label of a peer's int8 model.
fn int8_name(peer: peers::Peer) -> (String, String) {
    PeerModel {
        variant: "-int8",
        path: Default::default(),
    }
    .name(peer.key, peer.label)
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

    // Ours: generate once, build four ways; for an int8 model, generate it quantized too
    // and build it the two native ways.
    let int8 = fixture.calib.is_some();
    for quantized in [false, true] {
        if quantized && !int8 {
            continue;
        }
        let configs: &[ours::Config] = if quantized {
            &ours::INT8_CONFIGS
        } else {
            &ours::CONFIGS
        };
        if quantized {
            eprintln!("   generating int8");
        }
        match ours::generate(fixture, &dir, quantized) {
            Ok(generation) => {
                let check = match &generation.int8_reference {
                    Some(reference) => Check::Int8(reference.clone()),
                    None => Check::Keras,
                };
                let costs = match (quantized, &mut result.costs) {
                    (true, Some(costs)) => {
                        costs.int8 = Some(Int8Costs::from_generation(&generation));
                        costs
                    }
                    _ => {
                        result.macs = generation.macs;
                        result.costs.insert(Costs::from_generation(&generation))
                    }
                };
                for &config in configs {
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
                                check: check.clone(),
                            });
                        }
                        Err(why) => {
                            eprintln!("   {} failed: {why}", config.key);
                            result.engines.push(EngineResult::failed(
                                config.key,
                                config.label,
                                why,
                            ));
                        }
                    }
                }
            }
            Err(why) => {
                eprintln!("   generation failed: {why}");
                for config in configs {
                    result.engines.push(EngineResult::failed(
                        config.key,
                        config.label,
                        why.clone(),
                    ));
                }
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
                    check: Check::Keras,
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
        let mut models: Vec<Result<PeerModel, String>> =
            fixture.peer_models(peer.ext).into_iter().map(Ok).collect();
        // LiteRT's int8 model beside its float one (`Err`: why there is none).
        if int8 && peer.ext == "tflite" {
            models.push(fixture.int8_peer_model());
        }
        for model in models {
            let model = match model {
                Ok(model) => model,
                Err(why) => {
                    let (key, label) = int8_name(peer);
                    eprintln!("   {key} skipped: {why}");
                    result
                        .engines
                        .push(EngineResult::skipped(&key, &label, why));
                    continue;
                }
            };
            let (key, label) = model.name(peer.key, peer.label);
            let check = if model.variant == "-int8" {
                Check::Finite
            } else {
                Check::Keras
            };
            match peers::start(peer, &model, &settings.python, &input, &dir) {
                Ok(started) => running.push(Running {
                    result: EngineResult::new(&key, &label, Some(started.version)),
                    engine: Box::new(started.worker),
                    check,
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

    // Agreement with Keras (int8 builds: with the quantized interpreter), then calibration,
    // for every engine that started.
    let mut timed: Vec<(Running, u64)> = Vec::new();
    for mut r in running {
        let checked = r.engine.output().and_then(|got| {
            // Against Keras always (for an int8 engine, information only).
            let (keras_err, keras_ok) = fixture::agreement(&got, &fixture.expected);
            r.result.max_abs_err = Some(keras_err);
            let ok = match &r.check {
                Check::Keras => keras_ok,
                Check::Int8(reference) => {
                    let (err, ok) = fixture::agreement(&got, reference);
                    r.result.check_err = Some(err);
                    ok
                }
                Check::Finite => {
                    got.len() == fixture.expected.len() && got.iter().all(|v| v.is_finite())
                }
            };
            if ok {
                timing::calibrate(r.engine.as_mut()).map(Some)
            } else {
                Ok(None)
            }
        });
        match checked {
            Ok(Some(n)) => timed.push((r, n)),
            Ok(None) => {
                let (against, err) = match &r.check {
                    Check::Keras => ("Keras", r.result.max_abs_err),
                    Check::Int8(_) => ("the quantized interpreter", r.result.check_err),
                    Check::Finite => ("Keras's output length, or is not finite", None),
                };
                eprintln!(
                    "   {} disagrees with {against}: max abs error {:e}",
                    r.result.key,
                    err.unwrap_or(f32::NAN)
                );
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
