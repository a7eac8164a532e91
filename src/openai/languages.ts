// Whisper's language table. The names are exactly those of OpenAI whisper's LANGUAGES dict, because
// OpenAI's verbose_json reports the language by that lowercase English name, and clients compare
// against it: that is OpenAI's contract, kept here. Which codes are accepted is faster-whisper's: the
// installed library's codes (engine-facts.ts); test/unit/languages.test.ts checks that this table
// names each of them, in faster-whisper's order.
import { engineFacts } from '../engine/index.ts';

const LANGUAGE_NAMES: ReadonlyMap<string, string> = new Map([
  ['af', 'afrikaans'],
  ['am', 'amharic'],
  ['ar', 'arabic'],
  ['as', 'assamese'],
  ['az', 'azerbaijani'],
  ['ba', 'bashkir'],
  ['be', 'belarusian'],
  ['bg', 'bulgarian'],
  ['bn', 'bengali'],
  ['bo', 'tibetan'],
  ['br', 'breton'],
  ['bs', 'bosnian'],
  ['ca', 'catalan'],
  ['cs', 'czech'],
  ['cy', 'welsh'],
  ['da', 'danish'],
  ['de', 'german'],
  ['el', 'greek'],
  ['en', 'english'],
  ['es', 'spanish'],
  ['et', 'estonian'],
  ['eu', 'basque'],
  ['fa', 'persian'],
  ['fi', 'finnish'],
  ['fo', 'faroese'],
  ['fr', 'french'],
  ['gl', 'galician'],
  ['gu', 'gujarati'],
  ['ha', 'hausa'],
  ['haw', 'hawaiian'],
  ['he', 'hebrew'],
  ['hi', 'hindi'],
  ['hr', 'croatian'],
  ['ht', 'haitian creole'],
  ['hu', 'hungarian'],
  ['hy', 'armenian'],
  ['id', 'indonesian'],
  ['is', 'icelandic'],
  ['it', 'italian'],
  ['ja', 'japanese'],
  ['jw', 'javanese'],
  ['ka', 'georgian'],
  ['kk', 'kazakh'],
  ['km', 'khmer'],
  ['kn', 'kannada'],
  ['ko', 'korean'],
  ['la', 'latin'],
  ['lb', 'luxembourgish'],
  ['ln', 'lingala'],
  ['lo', 'lao'],
  ['lt', 'lithuanian'],
  ['lv', 'latvian'],
  ['mg', 'malagasy'],
  ['mi', 'maori'],
  ['mk', 'macedonian'],
  ['ml', 'malayalam'],
  ['mn', 'mongolian'],
  ['mr', 'marathi'],
  ['ms', 'malay'],
  ['mt', 'maltese'],
  ['my', 'myanmar'],
  ['ne', 'nepali'],
  ['nl', 'dutch'],
  ['nn', 'nynorsk'],
  ['no', 'norwegian'],
  ['oc', 'occitan'],
  ['pa', 'punjabi'],
  ['pl', 'polish'],
  ['ps', 'pashto'],
  ['pt', 'portuguese'],
  ['ro', 'romanian'],
  ['ru', 'russian'],
  ['sa', 'sanskrit'],
  ['sd', 'sindhi'],
  ['si', 'sinhala'],
  ['sk', 'slovak'],
  ['sl', 'slovenian'],
  ['sn', 'shona'],
  ['so', 'somali'],
  ['sq', 'albanian'],
  ['sr', 'serbian'],
  ['su', 'sundanese'],
  ['sv', 'swedish'],
  ['sw', 'swahili'],
  ['ta', 'tamil'],
  ['te', 'telugu'],
  ['tg', 'tajik'],
  ['th', 'thai'],
  ['tk', 'turkmen'],
  ['tl', 'tagalog'],
  ['tr', 'turkish'],
  ['tt', 'tatar'],
  ['uk', 'ukrainian'],
  ['ur', 'urdu'],
  ['uz', 'uzbek'],
  ['vi', 'vietnamese'],
  ['yi', 'yiddish'],
  ['yo', 'yoruba'],
  ['zh', 'chinese'],
  ['yue', 'cantonese'],
]);

// Whisper's TO_LANGUAGE_CODE: every name in the table plus these aliases, so a client may say
// "mandarin" or "castilian" wherever whisper itself would accept it.
const CODE_BY_NAME: ReadonlyMap<string, string> = new Map([
  ...Array.from(LANGUAGE_NAMES, ([code, name]): [string, string] => [name, code]),
  ['burmese', 'my'],
  ['valencian', 'ca'],
  ['flemish', 'nl'],
  ['haitian', 'ht'],
  ['letzeburgesch', 'lb'],
  ['pushto', 'ps'],
  ['panjabi', 'pa'],
  ['moldavian', 'ro'],
  ['moldovan', 'ro'],
  ['sinhalese', 'si'],
  ['castilian', 'es'],
  ['mandarin', 'zh'],
]);

export const supportedLanguageCodes: readonly string[] = Object.freeze([...LANGUAGE_NAMES.keys()]);

/** The English name whisper uses for a language code; an unknown code is passed through unchanged. */
export function languageName(code: string): string {
  return LANGUAGE_NAMES.get(code) ?? code;
}

let engineCodes: ReadonlySet<string> | undefined;

/** Whether the installed faster-whisper accepts this language code. */
export function engineKnowsLanguage(code: string): boolean {
  engineCodes ??= new Set(engineFacts().languageCodes);
  return engineCodes.has(code);
}

/**
 * The language code for an ISO code or an English name (or alias), case-insensitive; undefined if
 * unknown or if the installed faster-whisper does not know it.
 */
export function normaliseLanguage(input: string): string | undefined {
  const key = input.trim().toLowerCase();
  const code = engineKnowsLanguage(key) ? key : CODE_BY_NAME.get(key);
  return code !== undefined && engineKnowsLanguage(code) ? code : undefined;
}
