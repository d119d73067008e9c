//! The command-line interface: argument definitions and the headless commands. The binary's
//! `main` only parses arguments and hands off to [`run`].

pub mod bench;
pub mod datasets;
mod evaluate;
mod info;
mod interchange;
mod runs;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, ConfigFile, Field, Kind, FIELDS};
use crate::store::RunPaths;

/// cdw: train and study Contrastive Disentangling (CD) image models from a terminal.
#[derive(Debug, Parser)]
#[command(
    name = "cdw",
    version,
    about,
    long_about = "cdw: train and study Contrastive Disentangling (CD) image models from a terminal.\n\nWith no command, cdw opens the terminal workbench (Runs, New run, live dashboards); every \ncommand below does the same work headless.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no command: the terminal workbench.
    #[command(flatten)]
    pub ui: UiArgs,
}

/// Options of the terminal workbench (`cdw` with no command).
#[derive(Debug, Args, Clone)]
pub struct UiArgs {
    #[command(flatten)]
    pub roots: RunRoots,
    /// Config file that trainings launched from the workbench use (default: the built-in one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A theme file (roles laid over the dark theme, or over `base: light|mono`); default: the
    /// user's theme.yaml in the cdw config folder, if any.
    #[arg(long, value_name = "FILE")]
    pub theme: Option<PathBuf>,
    /// Plain ASCII lines and bars, for terminals without box-drawing or braille characters.
    #[arg(long)]
    pub ascii: bool,
}

impl UiArgs {
    /// The workbench's options, opening the Records screen of `open_records` first (if any).
    pub fn options(self, open_records: Vec<PathBuf>) -> crate::tui::Options {
        crate::tui::Options {
            records: self.roots.records,
            checkpoints: self.roots.checkpoints,
            config: self.config,
            theme: self.theme,
            ascii: self.ascii,
            open_records,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Versions (cdw, libtorch), CUDA/cuDNN availability, GPUs and thread count.
    Info,
    /// Train a CD (or SimCLR) model headless; progress on a terminal, JSON lines otherwise.
    Train(TrainArgs),
    /// Show the resolved configuration of a dataset, or the list of config fields.
    Config(ConfigCmd),
    /// Cluster a model's embeddings of a dataset (k-means) and print NMI / ARI / ACC.
    Evaluate(EvaluateArgs),
    /// Turn a PyTorch checkpoint of the reference code (.pth state_dict or .pth.tar training
    /// checkpoint) into a cdw checkpoint that a run continues from.
    Import(ImportArgs),
    /// Write a checkpoint's network as safetensors with the reference PyTorch names.
    Export(ExportArgs),
    /// List, download, check and sample the datasets.
    Datasets(datasets::DatasetsCmd),
    /// Measure parts of cdw on this machine: `cdw bench data`.
    Bench(bench::BenchCmd),
    /// The runs under --records as a table (the workbench's Runs screen, headless).
    Runs(RunsArgs),
    /// Browse records CSVs in the workbench: a run folder (metrics.csv joined with
    /// evaluation.csv), a CSV file (cdw's or the reference's transposed records_*.csv), or a
    /// folder of them. `--print` writes the tables to stdout instead.
    Records(RecordsArgs),
}

#[derive(Debug, Args)]
pub struct RecordsArgs {
    /// CSV files, run folders, or folders of CSV files (a dataset's folder opens its runs).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print each table as text (best value of each column marked with *) instead of opening
    /// the workbench.
    #[arg(long)]
    pub print: bool,
    #[command(flatten)]
    pub ui: UiArgs,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub roots: RunRoots,
    /// One JSON document (an array of runs) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Where the configuration comes from.
#[derive(Debug, Args, Clone)]
pub struct ConfigArgs {
    /// Dataset name (a key under `datasets:` in the config, e.g. shapes, cifar10) or folder:PATH.
    #[arg(long, short = 'd')]
    pub dataset: Option<String>,
    /// Config file (default: the built-in config/config.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one field, e.g. --set batch_size=64 (repeatable; applied last).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl ConfigArgs {
    pub fn resolve(&self) -> Result<Config, Failure> {
        let dataset = self.dataset.as_deref().ok_or_else(|| {
            Failure::usage(
                "--dataset is required (e.g. --dataset cifar10, or --dataset folder:PATH)",
            )
        })?;
        Ok(ConfigFile::load(self.config.as_deref())?.resolve(dataset, &self.set)?)
    }
}

/// Where runs keep their files.
#[derive(Debug, Args, Clone)]
pub struct RunRoots {
    /// Directory holding the run records (a folder per run: logs, records CSV, t-SNE pictures).
    #[arg(long, default_value = "records", value_name = "DIR")]
    pub records: PathBuf,
    /// Directory holding the checkpoints and saved models (a folder per run).
    #[arg(long, default_value = "checkpoints", value_name = "DIR")]
    pub checkpoints: PathBuf,
}

impl RunRoots {
    /// The folders of `cfg`'s run under these roots.
    pub fn paths(&self, cfg: &Config) -> RunPaths {
        RunPaths::new(&self.records, &self.checkpoints, cfg)
    }
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub roots: RunRoots,
    /// Print JSON lines even on a terminal.
    #[arg(long)]
    pub json: bool,
    /// Resume a run: its records directory, or DATASET/EXPERIMENT under --records. The config is
    /// the run's snapshot (with --set applied on top).
    #[arg(long, value_name = "RUN")]
    pub resume: Option<PathBuf>,
    /// With --resume: continue from this epoch's kept checkpoint (every 100th, or the latest);
    /// later history is cut back.
    #[arg(long, value_name = "N", requires = "resume")]
    pub from_epoch: Option<i64>,
    /// Start afresh even when `reload` would resume a checkpoint of the same experiment.
    #[arg(long, conflicts_with = "resume")]
    pub fresh: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A torch.save file: a state_dict (.pth) or a training checkpoint (.pth.tar).
    pub file: PathBuf,
    /// Dataset of the run (default: read from a reference name `{dataset}_checkpoint_{experiment}.pth.tar`).
    #[arg(long, short = 'd')]
    pub dataset: Option<String>,
    /// Experiment name of the run (default: read from the reference file name, as --dataset).
    #[arg(long)]
    pub experiment: Option<String>,
    /// Directory holding the checkpoints; the import goes to DIR/DATASET/EXPERIMENT/checkpoint.safetensors.
    #[arg(long, default_value = "checkpoints", value_name = "DIR")]
    pub checkpoints: PathBuf,
    /// Write the cdw checkpoint to this file instead.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing checkpoint.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A cdw checkpoint or saved model (.safetensors).
    pub checkpoint: PathBuf,
    /// The safetensors file to write.
    #[arg(long, value_name = "FILE.safetensors")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Evaluate a run: its records directory, or DATASET/EXPERIMENT under --records. The config
    /// is the run's snapshot (with --set on top); without --epoch or --model, its latest
    /// checkpoint is evaluated.
    #[arg(long, value_name = "RUN", conflicts_with = "dataset")]
    pub run: Option<PathBuf>,
    /// Evaluate the model (or checkpoint) this run kept at epoch N.
    #[arg(long, value_name = "N", conflicts_with = "model")]
    pub epoch: Option<i64>,
    /// Evaluate these weights: a cdw model or checkpoint, or a safetensors state_dict with the
    /// reference parameter names.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    // The run's folders: the t-SNE pictures go to its records folder, --epoch reads its
    // checkpoints folder.
    #[command(flatten)]
    pub roots: RunRoots,
    /// Report progress and the result as JSON lines on stdout (`evaluation_progress` events, then
    /// `evaluate_result` or `failed`).
    #[arg(long)]
    pub json: bool,
    /// Write embeddings (h.npy, f.npy), labels, indices and k-means assignments as .npy files.
    #[arg(long, value_name = "DIR")]
    pub dump: Option<PathBuf>,
    /// Also draw t-SNE maps of 1000 fixed images into the run's tsne/ folder.
    #[arg(long)]
    pub tsne: bool,
}

#[derive(Debug, Args)]
pub struct ConfigCmd {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the resolved configuration and experiment name.
    Show(ConfigArgs),
    /// List every config field: its group, what it accepts, its default and what it does.
    Fields {
        /// One JSON object per field (name, group, kind, choices, default, allowed, about), as a
        /// JSON array.
        #[arg(long)]
        json: bool,
    },
}

/// An error with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Bad input from the user (config, arguments): exit code 2.
    pub fn usage(e: impl std::fmt::Display) -> Failure {
        Failure {
            code: 2,
            message: e.to_string(),
        }
    }
    /// Anything else: exit code 1.
    pub fn runtime(e: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::usage(e)
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let Some(command) = cli.command else {
        return crate::tui::run(&cli.ui.options(Vec::new()));
    };
    let result = match command {
        Command::Runs(args) => runs::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Records(args) if args.print => {
            runs::print_records(&args.paths).map(|()| ExitCode::SUCCESS)
        }
        Command::Records(args) => Ok(crate::tui::run(&args.ui.options(args.paths))),
        Command::Info => {
            info::run();
            Ok(ExitCode::SUCCESS)
        }
        Command::Train(args) => train::run(&args),
        Command::Config(c) => config_cmd(c).map(|()| ExitCode::SUCCESS),
        Command::Evaluate(args) => evaluate::run(&args),
        Command::Import(args) => interchange::import(&args).map(|()| ExitCode::SUCCESS),
        Command::Export(args) => interchange::export(&args).map(|()| ExitCode::SUCCESS),
        Command::Datasets(c) => datasets::run(c),
        Command::Bench(c) => bench::run(&c).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// `cdw config fields --json`: what an editor needs to offer each field.
pub fn fields_json() -> serde_json::Value {
    let fields: Vec<serde_json::Value> = FIELDS
        .iter()
        .map(|f| {
            let mut o = serde_json::json!({
                "name": f.name,
                "group": f.group,
                "kind": f.kind.name(),
                "default": serde_json::to_value(f.default_value()).unwrap_or_default(),
                "allowed": f.allowed,
                "about": f.about,
            });
            if let Kind::Choice { choices, open } = f.kind {
                o["choices"] = serde_json::json!(choices);
                o["open"] = serde_json::json!(open);
            }
            o
        })
        .collect();
    serde_json::Value::Array(fields)
}

/// `cdw config fields`: the fields under their group headings.
fn fields_table() -> String {
    let mut out = String::new();
    let mut group = None;
    for (f, default) in FIELDS.iter().zip(Field::show_all(&Config::default())) {
        if group != Some(f.group) {
            group = Some(f.group);
            out.push_str(&format!("# {}\n", f.group.title()));
        }
        out.push_str(&format!(
            "{:<22} {:<10} {}\n{:<33}{}\n",
            f.name, default, f.allowed, "", f.about
        ));
    }
    out
}

fn config_cmd(c: ConfigCmd) -> Result<(), Failure> {
    match c.action {
        ConfigAction::Show(args) => {
            let cfg = args.resolve()?;
            println!("# experiment: {}", cfg.experiment_name());
            print!("{}", cfg.to_yaml()?);
        }
        ConfigAction::Fields { json } => {
            if json {
                println!("{}", fields_json());
            } else {
                print!("{}", fields_table());
            }
        }
    }
    Ok(())
}
