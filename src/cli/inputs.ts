// The files `earshot transcribe FILE|DIR…` works on: a file named is sent whatever it is (the server
// says if it is not audio); a directory stands for the audio files under it, by extension, found
// recursively, hidden ones left out. Each gets the path of its output under --out, which keeps the
// directory's layout.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

export interface AudioInput {
  path: string;
  /** How the file is shown: the path as given, or under the directory given. */
  name: string;
  /** Its output's path under --out, without the format's extension. */
  outputStem: string;
}

/** What a directory's audio files end with: OpenAI's formats and other common ones FFmpeg decodes. */
export const AUDIO_EXTENSIONS = new Set([
  '.aac',
  '.aif',
  '.aiff',
  '.amr',
  '.flac',
  '.m4a',
  '.mka',
  '.mkv',
  '.mov',
  '.mp2',
  '.mp3',
  '.mp4',
  '.mpeg',
  '.mpga',
  '.oga',
  '.ogg',
  '.opus',
  '.wav',
  '.webm',
  '.wma',
]);

export class InputError extends Error {}

/** The audio files under a directory, by extension, at any depth; hidden files and directories left out. */
async function audioFilesUnder(directory: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) files.push(...(await audioFilesUnder(full)));
    else if (entry.isFile() && AUDIO_EXTENSIONS.has(path.extname(entry.name).toLowerCase())) files.push(full);
  }
  return files.sort();
}

const withoutExtension = (file: string) => file.slice(0, file.length - path.extname(file).length);

/** The files to transcribe, in order, each once. Throws InputError for a path that does not exist. */
export async function collectInputs(paths: readonly string[]): Promise<AudioInput[]> {
  const inputs: AudioInput[] = [];
  const seen = new Set<string>();
  const add = (input: AudioInput) => {
    const key = path.resolve(input.path);
    if (seen.has(key)) return;
    seen.add(key);
    inputs.push(input);
  };
  for (const given of paths) {
    const info = await stat(given).catch(() => undefined);
    if (!info) throw new InputError(`no such file or directory: ${given}`);
    if (info.isDirectory()) {
      const files = await audioFilesUnder(given);
      if (files.length === 0) throw new InputError(`no audio files under ${given}`);
      for (const file of files) {
        const relative = path.relative(given, file);
        add({ path: file, name: path.join(given, relative), outputStem: withoutExtension(relative) });
      }
    } else {
      add({ path: given, name: given, outputStem: withoutExtension(path.basename(given)) });
    }
  }
  // Two inputs that would write the same output (talk.mp3 and talk.wav) keep their extensions.
  const stems = new Map<string, number>();
  for (const input of inputs) stems.set(input.outputStem, (stems.get(input.outputStem) ?? 0) + 1);
  return inputs.map((input) =>
    (stems.get(input.outputStem) ?? 0) > 1
      ? { ...input, outputStem: input.outputStem + path.extname(input.path) }
      : input,
  );
}
