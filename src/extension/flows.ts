import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { PruneOptions } from '../core/prune/options';
import type { PruneReport } from '../core/prune/prune-model';
import type { QuantizeOptions } from '../core/quant/options';
import type { QuantizeReport } from '../core/jobs/quantize-model';
import type { SensitivityReport } from '../core/sensitivity/analyze';
import type { LayerPolicy, QuantizeView, SensitivityView } from '../protocol/results-view';
import { pickModel } from './commands';
import { MODES, prunePicks, pruneOptions, quantizeOptions, sweepPicks, type QuantizePreset } from './presets';
import type { EngineRunner } from './engine';
import { ResultsPanel } from './results-panel';
import { SlurmRunner } from './slurm-runner';
import { pipelineTarget, quantizePipelineFlow } from './pipeline-flow';
import { columnBesideCode } from './training-code';


const RANDOM = 'random:16';

function settings() {
  return vscode.workspace.getConfiguration('quantlens');
}

/** Calibration data: the last folder for this model, the setting's, another folder, or random (marked). */
async function pickCalibration(ctx: vscode.ExtensionContext, model: vscode.Uri, required: boolean): Promise<string | undefined | null> {
  const key = `calibration:${model.fsPath}`;
  const last = ctx.workspaceState.get<string>(key);
  const configured = settings().get<string>('calibrationFolder', '');
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(model.fsPath);
  const items: Array<vscode.QuickPickItem & { value?: string | null }> = [];
  if (last) items.push({ label: last === RANDOM ? 'Random data (last used)' : path.basename(last), description: last === RANDOM ? 'not real data' : 'last used', value: last });
  if (configured && path.resolve(root, configured) !== last) items.push({ label: path.basename(configured), description: 'quantlens.calibrationFolder', value: path.resolve(root, configured) });
  items.push({ label: 'Choose a folder…', description: '.npy, .npz, .pb, test_data_set_N, images', value: null });
  if (last !== RANDOM) items.push({ label: 'Random data', description: 'NOT real data: a smoke test only; the report says so', value: RANDOM });
  if (!required) items.push({ label: 'No calibration data', description: 'fidelity is then checked on random inputs', value: undefined });
  const pick = await vscode.window.showQuickPick(items, { placeHolder: 'Calibration data', ignoreFocusOut: true });
  if (!pick) return null;
  let value = pick.value;
  if (value === null) {
    const chosen = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use as calibration data', defaultUri: vscode.Uri.file(path.dirname(model.fsPath)) });
    if (!chosen?.[0]) return null;
    value = chosen[0].fsPath;
  }
  if (value) await ctx.workspaceState.update(key, value);
  return value;
}

/** A recipe from the workspace, if there is one. */
async function pickRecipe(): Promise<string | undefined | null> {
  const found = await vscode.workspace.findFiles('**/*recipe*.{yaml,yml,json}', '**/node_modules/**', 50);
  if (!found.length) return undefined;
  const items = [{ label: 'No recipe', value: undefined as string | undefined }, ...found.map((u) => ({ label: vscode.workspace.asRelativePath(u), value: u.fsPath }))];
  const pick = await vscode.window.showQuickPick(items, { placeHolder: 'Per-module recipe (optional)', ignoreFocusOut: true });
  return pick ? pick.value : null;
}

function quantizeView(report: QuantizeReport, sensitivityReport?: string): QuantizeView {
  return {
    input: report.input, output: report.output, mode: `${report.options.mode} ${report.options.bits}-bit${report.options.mode === 'weight' && report.options.bits === 4 ? ` (${report.options.algorithm})` : ''}`,
    device: report.device + (report.fallbackReason ? ` (${report.fallbackReason})` : ''), sizeBefore: report.sizeBefore, sizeAfter: report.sizeAfter,
    latencyMs: report.latencyMs, fidelity: report.fidelity, fidelityData: report.fidelityData, quantized: report.quantized.length, skipped: report.skipped, warnings: report.warnings,
    ...(report.calibration ? { calibration: { method: report.calibration.method, source: report.calibration.source, samples: report.calibration.samples, tensors: report.calibration.tensors } } : {}),
    ...(report.profile ? { profile: report.profile } : {}),
    ...(report.placement ? { placement: { chosen: report.placement.chosen, boundaries: report.placement.boundaries, heavyOnly: report.placement.heavyOnly, floatMs: report.placement.floatMs, candidates: report.placement.candidates } } : {}),
    ...(sensitivityReport ? { sensitivityReport } : {}),
  };
}

function sensitivityView(r: SensitivityReport, file: string): SensitivityView {
  return {
    report: file, model: r.model, method: r.method, scheme: `${r.scheme.mode} ${r.scheme.bits}-bit, ${r.method}`,
    layers: r.layers.map((l) => ({ name: l.name, opType: l.opType, parameters: l.parameters, sensitivity: l.sensitivity, sensitivityDb: l.sensitivityDb, rank: l.rank, split: l.split, reverse: l.reverse, ranges: l.ranges })),
  };
}

const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, 'utf8')) as T;

export class Flows {
  readonly slurm: SlurmRunner;

  constructor(private readonly ctx: vscode.ExtensionContext, private readonly engine: EngineRunner, private readonly log: vscode.OutputChannel) {
    this.slurm = new SlurmRunner(ctx.extensionUri, log);
    ResultsPanel.onMessage = (panel, msg) => {
      if (msg.type === 'openLayer') {
        const q = panel.state?.data.kind === 'quantize' ? panel.state.data.view : undefined;
        if (q?.sensitivityReport) void this.openTree(q.sensitivityReport, msg.layer || undefined);
      } else if (msg.type === 'keepPoint') void this.keepPoint(panel, msg.sparsity);
      else if (msg.type === 'saveRecipe') void this.saveRecipe(panel, msg.rules, msg.rerun);
    };
  }

  /** Explorer → Quantize model: mode, data and recipe (last choices first), then the run and its results. */
  async quantize(uri: unknown, preset?: QuantizePreset): Promise<{ output: string; report: string; sensitivity?: string } | undefined> {
    // A pipeline folder (or its config.json / genai_config.json): every component, by generation.
    const pipeline = pipelineTarget(uri);
    if (pipeline) return quantizePipelineFlow(this.ctx, this.engine, this.log, pipeline, (r) => this.openTree(r), preset && { calibration: preset.calibration, evalData: preset.evalData });
    const model = await pickModel(uri);
    if (!model) return undefined;
    const memoryKey = `quantize:${model.fsPath}`;
    let choice: QuantizePreset;
    let suffix: string;
    if (preset) {
      choice = preset;
      suffix = preset.label ?? MODES.find((m) => m.preset.mode === preset.mode && (m.preset.bits ?? 8) === (preset.bits ?? 8) && !!m.preset.budget === (preset.budget !== undefined) && !!m.preset.progressive === !!preset.progressive)?.suffix ?? preset.mode;
    } else {
      const last = this.ctx.workspaceState.get<string>(memoryKey);
      const items = [...MODES].sort((a, b) => Number(b.label === last) - Number(a.label === last)).map((m) => ({ ...m, description: m.label === last ? 'last used' : undefined }));
      const picked = await vscode.window.showQuickPick(items, { placeHolder: `Quantize ${path.basename(model.fsPath)}`, ignoreFocusOut: true });
      // Match by label: a remote extension host may hand back a copy of the item without its extra fields.
      const mode = picked && MODES.find((m) => m.label === picked.label);
      if (!mode) return undefined;
      await this.ctx.workspaceState.update(memoryKey, mode.label);
      choice = { ...mode.preset };
      suffix = mode.suffix;
      if (choice.budget !== undefined) {
        const b = await vscode.window.showInputBox({ prompt: 'Largest allowed drop from the float model (1 − cosine)', value: String(this.ctx.workspaceState.get(`budget:${model.fsPath}`) ?? 0.01), validateInput: (v) => (Number(v) >= 0 && Number(v) < 1 ? undefined : 'a number in [0, 1)') });
        if (b === undefined) return undefined;
        choice.budget = Number(b);
        await this.ctx.workspaceState.update(`budget:${model.fsPath}`, choice.budget);
      }
      const data = await pickCalibration(this.ctx, model, mode.needsData);
      if (data === null) return undefined;
      choice.calibration = data;
      const recipe = await pickRecipe();
      if (recipe === null) return undefined;
      choice.recipe = recipe;
    }
    const output = path.join(path.dirname(model.fsPath), `${path.basename(model.fsPath, '.onnx')}.${suffix}.onnx`);
    const device = settings().get<'auto' | 'cpu' | 'cuda'>('device', 'auto');
    const ev = this.evaluatorOptions(choice.budget !== undefined || !!choice.progressive);
    const options = quantizeOptions(choice, {
      device, calibrationMethod: settings().get('calibrationMethod') as QuantizeOptions['calibrationMethod'],
      evaluator: ev.evaluator ? { command: ev.evaluator, lowerIsBetter: !!ev.evaluatorLowerIsBetter } : undefined,
    });
    const result = await this.engine.run(`QuantLens: quantizing ${path.basename(model.fsPath)}`, 'quantize', { model: model.fsPath, output, options });
    if (!result) return undefined;
    if ('kind' in result) {
      // A pipeline folder: its panels are not built yet; the report says how its generation compares.
      void vscode.window.showInformationMessage(`QuantLens: wrote ${result.output}: ${(result.judged.tokens.agreement * 100).toFixed(1)}% of the float pipeline's tokens reproduced`);
      return { output: result.output, report: path.join(result.output, 'quantlens.report.json') };
    }
    let sensitivityFile: string | undefined;
    let sens: SensitivityReport | undefined;
    if (preset?.sensitivity !== false) {
      sens = await this.engine.run(`QuantLens: per-layer sensitivity of ${path.basename(model.fsPath)}`, 'sensitivity', {
        model: model.fsPath, options: { mode: choice.mode, bits: choice.bits, calibration: choice.calibration ?? RANDOM, device, exclude: [] },
      });
      if (sens) sensitivityFile = `${model.fsPath}.sensitivity.json`;
    }
    const report = readJson<QuantizeReport>(result.report);
    const column = await columnBesideCode(sens?.layers.map((l) => l.name) ?? report.nodes.map((n) => n.modulePath));
    ResultsPanel.show(this.ctx.extensionUri, this.log, { data: { kind: 'quantize', view: quantizeView(report, sensitivityFile) } }, column);
    if (sens && sensitivityFile) ResultsPanel.show(this.ctx.extensionUri, this.log, { data: { kind: 'sensitivity', view: sensitivityView(sens, sensitivityFile) } }, column);
    return { output: result.output, report: result.report, ...(sensitivityFile ? { sensitivity: sensitivityFile } : {}) };
  }

  /** The user's evaluator (setting) for budget, progressive and sweeps: only in a trusted workspace. */
  private evaluatorOptions(wanted: boolean): Partial<QuantizeOptions> {
    const command = settings().get<string>('evaluatorCommand', '');
    if (!wanted || !command) return {};
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showWarningMessage('QuantLens: the evaluator command runs only in a trusted workspace; fidelity to the float model is used instead.');
      return {};
    }
    return { evaluator: command, evaluatorLowerIsBetter: settings().get<boolean>('evaluatorLowerIsBetter', false) };
  }

  async sensitivity(uri: unknown, preset?: { calibration?: string; mode?: QuantizeOptions['mode']; bits?: 8 | 4 }): Promise<string | undefined> {
    const model = await pickModel(uri);
    if (!model) return undefined;
    let calibration = preset?.calibration;
    if (!preset) {
      const c = await pickCalibration(this.ctx, model, true);
      if (c === null || c === undefined) return undefined;
      calibration = c;
    }
    const title = `QuantLens: per-layer sensitivity of ${path.basename(model.fsPath)}`;
    const req = { model: model.fsPath, options: { mode: preset?.mode ?? 'static', bits: preset?.bits, calibration: calibration ?? RANDOM, device: settings().get<'auto'>('device') } };
    const file = `${model.fsPath}.sensitivity.json`;
    let column: vscode.ViewColumn | undefined;
    // On Slurm the tree fills as shards finish: the layers measured so far, ranked among themselves.
    const show = async (r: SensitivityReport) => ResultsPanel.show(this.ctx.extensionUri, this.log, { data: { kind: 'sensitivity', view: sensitivityView(r, file) } }, column ??= await columnBesideCode(r.layers.map((l) => l.name)));
    const r = settings().get<string>('runner') === 'slurm'
      ? await this.slurm.run(title, 'sensitivity', req, (partial) => void show(partial))
      : await this.engine.run(title, 'sensitivity', req);
    if (!r) return undefined;
    await show(r);
    return file;
  }

  /** Opens a sensitivity report in the tree, at `layer` (the hover's link). */
  async openTree(report?: string, layer?: string): Promise<boolean> {
    if (!report || !fs.existsSync(report)) {
      void vscode.window.showWarningMessage(`QuantLens: no sensitivity report${report ? ` at ${report}` : ''}; run "QuantLens: Analyze sensitivity" first.`);
      return false;
    }
    const r = readJson<SensitivityReport>(report);
    const existing = ResultsPanel.get('sensitivity');
    if (existing?.state?.data.kind === 'sensitivity' && existing.state.data.view.report === report) {
      existing.panel.reveal(undefined, false);
      if (layer) existing.focus(layer);
      return true;
    }
    ResultsPanel.show(this.ctx.extensionUri, this.log, { data: { kind: 'sensitivity', view: sensitivityView(r, report) }, ...(layer ? { focus: layer } : {}) }, await columnBesideCode(r.layers.map((l) => l.name)));
    return true;
  }

  /** Palette → Run pruning sweep: model, method and sparsities; the chart grows as points arrive. */
  async sweep(uri: unknown, preset?: { method?: PruneOptions['method']; sparsities?: number[]; calibration?: string }): Promise<{ report: string; points: number } | undefined> {
    const model = await pickModel(uri);
    if (!model) return undefined;
    let method = preset?.method, sparsities = preset?.sparsities, calibration = preset?.calibration;
    if (!preset) {
      const m = await vscode.window.showQuickPick(sweepPicks(), { placeHolder: 'Pruning method', ignoreFocusOut: true });
      if (!m) return undefined;
      method = m.label as PruneOptions['method'];
      const s = await vscode.window.showInputBox({ prompt: 'Sparsities, comma separated', value: this.ctx.workspaceState.get(`sparsities:${model.fsPath}`, '0.1,0.3,0.5,0.7,0.9'), validateInput: (v) => (v.split(',').every((x) => x.trim() !== '' && Number(x) >= 0 && Number(x) < 1) ? undefined : 'numbers in [0, 1), comma separated') });
      if (s === undefined) return undefined;
      await this.ctx.workspaceState.update(`sparsities:${model.fsPath}`, s);
      sparsities = s.split(',').map(Number);
      const c = await pickCalibration(this.ctx, model, false);
      if (c === null) return undefined;
      calibration = c;
    }
    const report = path.join(path.dirname(model.fsPath), `${path.basename(model.fsPath, '.onnx')}.sweep.json`);
    const panel = ResultsPanel.show(this.ctx.extensionUri, this.log, { data: { kind: 'sweep', view: { model: model.fsPath, method: method ?? 'magnitude', points: [], done: false, fidelityData: calibration ?? 'random:4' } } }, await columnBesideCode([]));
    const ev = this.evaluatorOptions(true);
    const title = `QuantLens: pruning sweep of ${path.basename(model.fsPath)}`;
    const req = {
      model: model.fsPath,
      sweep: { sparsities: sparsities ?? [0.1, 0.3, 0.5], output: report, ...(ev.evaluator ? { evaluator: { command: ev.evaluator, lowerIsBetter: ev.evaluatorLowerIsBetter } } : {}) },
      options: { method: method ?? 'magnitude', calibration, device: settings().get<'auto'>('device') },
    };
    const r = settings().get<string>('runner') === 'slurm'
      ? await this.slurm.run(title, 'sweep', req, (partial) => partial.points.forEach((p) => panel.addPoint(p)))
      : await this.engine.run(title, 'sweep', req, (p) => panel.addPoint(p));
    panel.sweepDone();
    if (!r) return undefined;
    if (panel.state?.data.kind === 'sweep') panel.state.data.view.baseline = r.baseline;
    return { report: r.report, points: r.points.length };
  }

  /** A sweep point chosen in the chart: its model is copied beside the input under a plain name. */
  private async keepPoint(panel: ResultsPanel, sparsity: number): Promise<void> {
    if (panel.state?.data.kind !== 'sweep') return;
    const v = panel.state.data.view;
    const p = v.points.find((q) => q.sparsity === sparsity);
    if (!p || !fs.existsSync(p.model)) return;
    const dest = path.join(path.dirname(v.model), `${path.basename(v.model, '.onnx')}.${v.method}-${p.sparsity}.onnx`);
    fs.copyFileSync(p.model, `${dest}.tmp`);
    fs.renameSync(`${dest}.tmp`, dest);
    this.log.appendLine(`kept ${dest} (sparsity ${p.sparsity}, cosine ${p.cosine.toFixed(5)})`);
    void vscode.window.showInformationMessage(`QuantLens: kept ${path.basename(dest)} (cosine ${p.cosine.toFixed(4)}, ${p.parameters.toLocaleString('en-US')} parameters)`);
  }

  /** Palette → Prune model: the pruned model beside the input, and its heatmaps. */
  async prune(uri: unknown, preset?: Partial<PruneOptions>): Promise<{ output: string; report: string } | undefined> {
    const model = await pickModel(uri);
    if (!model) return undefined;
    let options: Partial<PruneOptions> = { ...preset };
    if (!preset) {
      const m = await vscode.window.showQuickPick(prunePicks(), { placeHolder: 'Pruning method', ignoreFocusOut: true });
      if (!m) return undefined;
      const s = m.label === 'nm' ? '0.5' : await vscode.window.showInputBox({ prompt: 'Sparsity', value: '0.5', validateInput: (v) => (Number(v) >= 0 && Number(v) < 1 ? undefined : 'a number in [0, 1)') });
      if (s === undefined) return undefined;
      options = pruneOptions(m, Number(s));
    }
    const kind = `${options.method ?? 'magnitude'}${options.pruneNormalized ? '-norm' : ''}${options.roundTo === 'auto' ? '-aligned' : ''}`;
    const output = path.join(path.dirname(model.fsPath), `${path.basename(model.fsPath, '.onnx')}.${kind}-${options.sparsity ?? 0.5}.onnx`);
    const r = await this.engine.run(`QuantLens: pruning ${path.basename(model.fsPath)}`, 'prune', { model: model.fsPath, output, options: { ...options, device: settings().get('device') } });
    if (!r) return undefined;
    const rep = readJson<PruneReport>(r.report);
    ResultsPanel.show(this.ctx.extensionUri, this.log, {
      data: { kind: 'prune', view: {
        input: rep.input, output: rep.output, method: rep.method, sparsity: rep.sparsity, parametersBefore: rep.parametersBefore, parametersAfter: rep.parametersAfter,
        sizeBefore: rep.sizeBefore, sizeAfter: rep.sizeAfter, latencyMs: rep.latencyMs, fidelity: rep.fidelity, fidelityData: rep.fidelityData, maps: rep.maps,
        layers: rep.layers.map((l) => ({ name: l.name, sparsity: l.sparsity, shapeBefore: l.shapeBefore, shapeAfter: l.shapeAfter })), skipped: rep.skipped,
        ...(rep.rounding ? { rounding: rep.rounding } : {}),
        ...(rep.compensation ? { compensation: rep.compensation } : {}),
        warnings: rep.warnings,
      } },
    }, await columnBesideCode(rep.layers.map((l) => l.name)));
    return { output: r.output, report: r.report };
  }

  /** The tree's policy edits as a recipe beside the model; optionally quantize again with it. */
  async saveRecipe(panel: ResultsPanel, rules: Array<{ module: string; policy: LayerPolicy }>, rerun: boolean): Promise<string | undefined> {
    if (panel.state?.data.kind !== 'sensitivity') return undefined;
    const model = panel.state.data.view.model;
    const file = path.join(path.dirname(model), `${path.basename(model, '.onnx')}.recipe.yaml`);
    const rule = (p: LayerPolicy) => (p === 'float' ? '{keep: float}' : p === 'int4' ? '{mode: weight, bits: 4}' : '{bits: 8}');
    const text = ['# Written by QuantLens from the sensitivity tree; the last matching rule wins.', 'rules:', ...rules.map((r) => `  ${r.module}: ${rule(r.policy)}`)].join('\n') + '\n';
    fs.writeFileSync(`${file}.tmp`, text);
    fs.renameSync(`${file}.tmp`, file);
    this.log.appendLine(`wrote ${file} (${rules.length} rules)`);
    if (!rerun) {
      void vscode.window.showInformationMessage(`QuantLens: saved ${path.basename(file)}`, 'Open').then((a) => { if (a) void vscode.window.showTextDocument(vscode.Uri.file(file)); });
      return file;
    }
    const calibration = this.ctx.workspaceState.get<string>(`calibration:${model}`) ?? RANDOM;
    await this.quantize(vscode.Uri.file(model), { mode: 'static', bits: 8, calibration, recipe: file, label: 'recipe', sensitivity: false });
    return file;
  }
}
