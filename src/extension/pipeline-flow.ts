// Quantize model on a VLM pipeline (a folder of ONNX files, or its config.json / genai_config.json): data
// for calibration by generation, a held-apart set to judge on, then the sensitivity tree with the
// components as roots beside the training code.
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { PipelineQuantizeResult } from '../core/jobs/quantize-pipeline';
import { detectPipeline, isPipelineDir, pipelineSensitivityPath } from '../core/pipeline/layout';
import type { EngineRunner } from './engine';

const DATA_HINT = 'images and prompts: pixel_values_N.npy or .png/.jpg files, with input_ids.npy, prompts.json or prompts.txt';

/** The pipeline folder a URI names (the folder itself, or one of its config files), if it is one. */
export function pipelineTarget(uri: unknown): string | undefined {
  if (!(uri instanceof vscode.Uri) || uri.scheme !== 'file') return undefined;
  const p = uri.fsPath;
  if (!fs.existsSync(p)) return undefined;
  const dir = fs.statSync(p).isDirectory() ? p : /(^|[\\/])(genai_)?config\.json$/.test(p) ? path.dirname(p) : undefined;
  return dir && isPipelineDir(dir) ? dir : undefined;
}

/** Pipeline folders of the workspace, for the explorer's "Quantize model" on folders (a context key). */
export async function updatePipelineFolders(): Promise<string[]> {
  const found = await vscode.workspace.findFiles('{**/genai_config.json,**/decoder_model_merged.onnx}', '**/node_modules/**', 200);
  const dirs = new Set<string>();
  for (const u of found) {
    const d = path.dirname(u.fsPath);
    for (const c of [d, path.dirname(d)]) if (isPipelineDir(c)) dirs.add(c);
  }
  const list = [...dirs];
  await vscode.commands.executeCommand('setContext', 'quantlens.pipelineFolders', list);
  return list;
}

async function pickFolder(ctx: vscode.ExtensionContext, key: string, title: string, near: string): Promise<string | undefined> {
  const last = ctx.workspaceState.get<string>(key);
  const chosen = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: title, title: `${title} (${DATA_HINT})`, defaultUri: vscode.Uri.file(last ?? near) });
  if (!chosen?.[0]) return undefined;
  await ctx.workspaceState.update(key, chosen[0].fsPath);
  return chosen[0].fsPath;
}

function uniqueOutput(dir: string): string {
  const base = `${dir.replace(/[\\/]+$/, '')}-quantized`;
  let out = base;
  for (let i = 2; fs.existsSync(out); i++) out = `${base}-${i}`;
  return out;
}

export async function quantizePipelineFlow(
  ctx: vscode.ExtensionContext, engine: EngineRunner, log: vscode.OutputChannel, dir: string,
  openTree: (report: string) => Promise<boolean>, preset?: { calibration?: string; evalData?: string },
): Promise<{ output: string; report: string; sensitivity?: string } | undefined> {
  const p = detectPipeline(dir);
  const calibration = preset?.calibration ?? await pickFolder(ctx, `pipeline-calibration:${dir}`, 'Calibration data', dir);
  if (!calibration) return undefined;
  let evalData = preset?.evalData;
  if (!preset) {
    const pick = await vscode.window.showQuickPick([
      { label: 'Held-apart evaluation data…', description: 'judged on images and prompts not used to calibrate', value: 'pick' },
      { label: 'Judge on the calibration data', description: 'NOT evidence of accuracy: the report says so', value: 'same' },
    ], { placeHolder: 'What the quantized pipeline is judged on (greedy generation against the float one)', ignoreFocusOut: true });
    if (!pick) return undefined;
    if (pick.value === 'pick') {
      evalData = await pickFolder(ctx, `pipeline-eval:${dir}`, 'Evaluation data', dir);
      if (!evalData) return undefined;
    }
  }
  const output = uniqueOutput(dir);
  const name = path.basename(dir);
  const r = await engine.run(`QuantLens: quantizing the ${p.layout} pipeline ${name}`, 'quantize', { model: dir, output, options: { calibration, ...(evalData ? { evalData } : {}) } }) as PipelineQuantizeResult | undefined;
  if (!r) return undefined;
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  log.appendLine(`${name}: wrote ${r.output}; ${r.components.map((c) => `${c.role} ${c.kept ? 'already quantized, copied as shipped' : c.recipe === 'float' ? 'float' : `${c.recipe.mode}${c.recipe.bits ? ` ${c.recipe.bits}-bit` : ''}`}`).join(', ')}; `
    + `tokens ${pct(r.judged.tokens.agreement)} reproduced, answers ${pct(r.judged.tokens.exactMatch)} identical on ${r.judged.samples} samples${r.warning ? ` (${r.warning})` : ''}`);
  void vscode.window.showInformationMessage(`QuantLens: ${path.basename(r.output)}: ${pct(r.judged.tokens.agreement)} of the float pipeline's tokens reproduced${evalData ? '' : ' (on the calibration data)'}`, 'Show log').then((a) => { if (a) log.show(true); });
  await updatePipelineFolders();
  // The tree across components (roots: vision, decoder), measured on what generation feeds each.
  const sens = await engine.run(`QuantLens: sensitivity of the pipeline ${name}`, 'sensitivity', { model: dir, options: { calibration } });
  const file = pipelineSensitivityPath(dir);
  if (sens) await openTree(file);
  return { output: r.output, report: path.join(r.output, 'quantlens.report.json'), ...(sens ? { sensitivity: file } : {}) };
}
