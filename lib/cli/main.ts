/** The `tinyemo` command. Results go to stdout (one JSON document with --json); logs to stderr. */
import { Command, CommanderError } from 'commander';

import { TinyEmoError } from '../errors';
import { packageVersion } from '../version';
import { doctor, formatDoctor } from './doctor';
import { formatInspect, inspectPath } from './inspect';
import { BiasFlags, biasCommand, formatBias } from './bias';
import { ClassifyFlags, classifyCommand, formatClassify } from './classify';
import { FeaturesFlags, featuresCommand, formatFeatures } from './features';
import { SynthFlags, formatSynth, synthCommand } from './synth';
import { ReasonFlags, reasonCommand } from './reason';
import { EvalFlags, evalCommand, formatEval } from './eval';
import { pullCommand } from './pull';
import { TrainFlags, formatTrainResult, trainCommand } from './train';

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  let code = 0;
  program
    .name('tinyemo')
    .description('TinyEmo emotion classification and reasoning, natively in Node.js')
    .version(packageVersion(), '-v, --version')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('doctor')
    .description('report the native build, CPU features, threads and device, and run a kernel self-check')
    .option('--json', 'print one JSON document')
    .action((opts: { json?: boolean }) => {
      const report = doctor();
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDoctor(report)}\n`);
      if (!report.selfCheck.ok || report.gpuCheck?.ok === false) code = 1;
    });

  program
    .command('inspect')
    .description('list the tensors (name, dtype, shape) of a weight file (safetensors, .pt/.bin, .npy) or model folder')
    .argument('<file>', 'a weight file or a model folder')
    .option('--json', 'print one JSON document')
    .action((file: string, opts: { json?: boolean }) => {
      const r = inspectPath(file);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatInspect(r)}\n`);
    });

  program
    .command('pull')
    .description('download a Hugging Face repository into the hub cache (HF_HOME / HF_HUB_CACHE; HF_TOKEN)')
    .argument('<repo>', 'repository id, e.g. openai/clip-vit-large-patch14')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--include <glob...>', 'only files matching these globs')
    .option('--offline', 'use the cache only and say what is missing')
    .option('--json', 'print one JSON document')
    .action(async (repo: string, opts: { revision: string; include?: string[]; offline?: boolean; json?: boolean }) => {
      const r = await pullCommand(repo, opts);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${r.dir}\n`);
    });

  program
    .command('train')
    .description('train a Metric Projector on a data folder of features (one sub-folder per class)')
    .requiredOption('--data <dir>', 'training data: one folder per class of feature files (.pt, .safetensors, .npy)')
    .option('--val <dir>', 'a separate validation folder')
    .option('--val-split <fraction>', 'hold out this stratified fraction of --data for validation (default 0.2)')
    .option('--llm <dir>', "an LLM folder: labels are its token embeddings (only the embedding table and tokenizer are read)")
    .option('--tokenizer <dir>', 'the tokenizer folder when the LLM has none (OpenELM uses LLaMA\'s)')
    .option('--labels <file>', 'a saved label table (labels.safetensors) instead of --llm')
    .option('--label-template <text>', 'label text template, e.g. "a scene evoking {emotion} to viewers"')
    .option('--synonyms <file>', 'JSON {class: [synonyms]} averaged into each label')
    .option('--loss <name>', 'cosine | infonce | ntxent (default cosine)')
    .option('--epochs <n>', 'epochs (default 5)')
    .option('--batch-size <n>', 'batch size (default 32)')
    .option('--lr <x>', 'peak learning rate (default 5e-4)')
    .option('--weight-decay <x>', 'AdamW weight decay (default 0.01)')
    .option('--schedule <name>', 'onecycle | cosine (default onecycle)')
    .option('--warmup <fraction>', 'one-cycle warm-up fraction of the steps (default 0.3)')
    .option('--hidden <n>', 'label-space dimension when no --llm/--labels is given (default 1280)')
    .option('--dropout <p>', 'dropout after GELU (default 0.2)')
    .option('--noise <x>', 'feature noise: Gaussian, this fraction of the features\' spread (default 0)')
    .option('--seed <n>', 'seed of the split, initialisation, shuffles and dropout (default 0)')
    .option('--device <device>', 'where the model trains: cpu (default), cuda or cuda:N')
    .requiredOption('--out <dir>', 'model folder to write (tinyemo.json, weights, checkpoint, log)')
    .option('--resume', "continue from --out's checkpoint (same flags)")
    .option('--json', 'print one JSON document')
    .action(async (opts: TrainFlags) => {
      const r = await trainCommand(opts);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatTrainResult(r)}\n`);
    });

  program
    .command('eval')
    .description('evaluate a projector on a data folder: top-1, top-5, per class, macro-F1, confusion')
    .requiredOption('--data <dir>', 'one folder per class of feature files')
    .requiredOption('--projector <dir>', 'a model folder from `tinyemo train`, or a released projector (.bin or folder) with --llm')
    .option('--llm <dir>', 'the label space: this LLM folder (required for a released projector)')
    .option('--tokenizer <dir>', 'the tokenizer folder when the LLM has none')
    .option('--labels <file>', 'the label space: a saved label table')
    .option('--label-template <text>', 'label text template used in training')
    .option('--synonyms <file>', 'JSON {class: [synonyms]} used in training')
    .option('--allow-label-mismatch', 'evaluate in a label space other than the one the projector was trained in')
    .option('--heldout', 'only the part of --data that training held out (--val-split), split as it was')
    .option('--plots <dir>', 'also write confusion.svg and embeddings.svg (PCA map) there')
    .option('--json', 'print one JSON document')
    .action((opts: EvalFlags) => {
      const r = evalCommand(opts);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatEval(r)}\n`);
    });

  program
    .command('classify')
    .description('the nearest emotion labels of images (or of image features), with a model folder from `tinyemo train` or the default models')
    .argument('<files...>', 'images (.jpg, .png, .webp, ...) or feature files (.pt, .safetensors, .npy)')
    .option('--model <dir>', 'a model folder (tinyemo.json); default: the pinned TinyEmo models from the Hugging Face cache')
    .option('--vision <dir>', "the vision tower (folder or hub id) instead of the model folder's")
    .option('--taxonomy <name>', 'the labels of the default model (emotion6, mikels8, ...; default emotion6)')
    .option('--top-k <k>', 'labels per file (default 3)')
    .option('--batch-size <n>', 'images per forward pass (default 8)')
    .option('--auto-orient', 'apply EXIF orientation (off by default, as in the reference pipeline)')
    .option('--device <device>', 'where the projector runs: cpu, cuda or cuda:N (default: a GPU when the CUDA build finds one)')
    .option('--json', 'print one JSON document')
    .action(async (files: string[], opts: ClassifyFlags) => {
      const r = await classifyCommand(files, opts);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatClassify(r)}\n`);
    });

  program
    .command('features')
    .description('precompute image embeddings for a folder of images into a data folder of .safetensors files')
    .argument('<images>', 'a folder of images (one sub-folder per class, any depth)')
    .requiredOption('--vision <dir>', 'the vision tower: a Hugging Face folder or a hub id in the cache')
    .requiredOption('--out <dir>', 'where the feature files go (same relative paths; existing ones are kept)')
    .option('--batch-size <n>', 'images per forward pass (default 8)')
    .option('--dtype <type>', 'f32 or f16 (default f32)')
    .option('--auto-orient', 'apply EXIF orientation (off by default, as in the reference pipeline)')
    .option('--max-pixels <n>', 'refuse images larger than this many pixels (default 50,000,000)')
    .option('--device <device>', 'where the vision tower runs: cpu (default), cuda or cuda:N (CLIP towers)')
    .option('--json', 'print one JSON document')
    .action(async (images: string, opts: FeaturesFlags) => {
      const r = await featuresCommand(images, opts);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatFeatures(r)}\n`);
    });

  program
    .command('bias')
    .description('semi-automated bias detection: association tests in the label space and group gaps on a data set, ranked for review')
    .requiredOption('--model <dir>', 'a model folder from `tinyemo train`')
    .option('--data <dir>', 'a data folder (one sub-folder per class) of features or images to probe the classifier on')
    .option('--vision <dir>', "for a folder of images: the vision tower (default: the model's)")
    .option('--attributes <file>', 'CSV or JSONL: sample id -> attributes (gender, age, object, ...)')
    .option('--probes <file>', "probe vocabularies (default: tinyemo's; same JSON shape)")
    .option('--llm <dir>', "the LLM whose embeddings place probe words (default: the model's label space)")
    .option('--tokenizer <dir>', 'the tokenizer folder when the LLM has none')
    .requiredOption('--out <dir>', 'where report.html and report.json go')
    .option('--alpha <q>', 'false-discovery rate for flagging (default 0.05)')
    .option('--min-group <n>', 'smallest group tested (default 10)')
    .option('--bootstrap <n>', 'bootstrap resamples per interval (default 1000)')
    .option('--permutations <n>', 'permutations per p-value (default 1000)')
    .option('--seed <n>', 'seed of the resampling (default 0)')
    .option('--review <file>', "reviewers' decisions, JSON lines (default OUT/review.jsonl)")
    .option('--json', 'print the report as one JSON document')
    .action(async (opts: BiasFlags) => {
      const r = await biasCommand(opts);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatBias(r, opts.out)}\n`);
    });

  program
    .command('synth')
    .description('make instruction data with a teacher model (OpenAI-compatible endpoint) from a folder of labelled images')
    .requiredOption('--data <dir>', 'images, one sub-folder per class (the label)')
    .requiredOption('--task <task>', 'caption | vqa | sqa | reason')
    .option('--teacher <url>', 'the endpoint, e.g. http://127.0.0.1:8000/v1 (or TINYEMO_TEACHER_URL); key from TINYEMO_TEACHER_API_KEY or OPENAI_API_KEY')
    .option('--teacher-model <name>', 'the model it serves (or TINYEMO_TEACHER_MODEL)')
    .requiredOption('--out <file>', 'JSON lines, appended to (an interrupted run resumes)')
    .option('--concurrency <n>', 'requests in flight (default 4)')
    .option('--rpm <n>', 'requests per minute, all workers together (default: no limit)')
    .option('--retries <n>', 'retries of a request after 429, 5xx or a timeout (default 4)')
    .option('--attempts <n>', 'answers asked for per image before discarding it (default 3)')
    .option('--timeout <s>', 'seconds per request (default 120)')
    .option('--full-labels', 'reason: list every label instead of a random subset with the gold one')
    .option('--seed <n>', 'seed of the label subsets (default 0)')
    .option('--limit <n>', 'only the first N images')
    .option('--json', 'print the statistics as one JSON document')
    .action(async (opts: SynthFlags) => {
      const r = await synthCommand(opts);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatSynth(r, opts.out)}\n`);
    });

  program
    .command('reason')
    .description("the projector's emotion label, then the multimodal model's reasoning about the image")
    .argument('<image>', 'an image file')
    .requiredOption('--model <dir>', 'a model folder from `tinyemo train` (the projector and its labels)')
    .option('--mllm <dir>', 'the TinyLLaVA-format model (folder or hub id); default: the model folder\'s "reasoning"')
    .option('--tokenizer <dir>', 'its tokenizer when it ships none (OpenELM-based: TinyLlama\'s)')
    .option('--template <name>', 'llama | phi | qwen2_base (default: from the LLM)')
    .option('--vision <dir>', "the projector's vision tower, when the model folder does not name it")
    .option('--device <device>', 'where everything runs: cpu (default), cuda or cuda:N')
    .option('--max-new-tokens <n>', 'default 256')
    .option('--temperature <x>', 'default 0 (greedy)')
    .option('--top-p <p>', 'nucleus sampling (with --temperature)')
    .option('--seed <n>', 'seed of the sampling')
    .option('--stream', 'write the reasoning as it is generated (with --json: one JSON event per line)')
    .option('--json', 'JSON output')
    .action(async (image: string, opts: ReasonFlags) => {
      await reasonCommand(image, opts, (s) => process.stdout.write(s));
    });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof TinyEmoError) {
      process.stderr.write(`tinyemo: ${e.message} [${e.code}]\n`);
      return 2;
    }
    throw e;
  }
  return code;
}
