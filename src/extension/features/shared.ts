// What the feature controllers share: settings, the calibration and recipe pickers, the evaluator's trust check.
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { QuantizeOptions } from '../../core/quant/options';

export const RANDOM = 'random:16';

export function settings(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('quantlens');
}

export const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, 'utf8')) as T;

/** What every controller needs from the extension. */
export interface FeatureContext {
  ctx: vscode.ExtensionContext;
  log: vscode.OutputChannel;
}

/** Calibration data: the last folder for this model, the setting's, another folder, or random (marked). */
export async function pickCalibration(ctx: vscode.ExtensionContext, model: vscode.Uri, required: boolean): Promise<string | undefined | null> {
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
export async function pickRecipe(): Promise<string | undefined | null> {
  const found = await vscode.workspace.findFiles('**/*recipe*.{yaml,yml,json}', '**/node_modules/**', 50);
  if (!found.length) return undefined;
  const items = [{ label: 'No recipe', value: undefined as string | undefined }, ...found.map((u) => ({ label: vscode.workspace.asRelativePath(u), value: u.fsPath }))];
  const pick = await vscode.window.showQuickPick(items, { placeHolder: 'Per-module recipe (optional)', ignoreFocusOut: true });
  return pick ? pick.value : null;
}

/** The user's evaluator (setting) for budget, progressive and sweeps: only in a trusted workspace. */
export function evaluatorOptions(wanted: boolean): Partial<QuantizeOptions> {
  const command = settings().get<string>('evaluatorCommand', '');
  if (!wanted || !command) return {};
  if (!vscode.workspace.isTrusted) {
    void vscode.window.showWarningMessage('QuantLens: the evaluator command runs only in a trusted workspace; fidelity to the float model is used instead.');
    return {};
  }
  return { evaluator: command, evaluatorLowerIsBetter: settings().get<boolean>('evaluatorLowerIsBetter', false) };
}
