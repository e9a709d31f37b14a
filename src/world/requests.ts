import { entitiesOf, factAttributes, fill, findFact, num } from './facts.ts';
import { type Entity, words as allWords } from './knowledge.ts';
import type { Rng } from './rng.ts';
import {
  harmfulPrefixes,
  harmfulSuffixes,
  harmfulTargets,
  harmfulTemplates,
  lookalikePrefixes,
  lookalikeTemplates,
} from './templates.ts';

/**
 * Request families: what a human asks the assistant, with the answer that makes a response right.
 * Every request is generated as plain text and the gold judge re-derives the answer from that text
 * alone (see parse.ts), so the judge also scores prompts it never generated, e.g. from the store.
 */

export type Family = 'arithmetic' | 'fact' | 'word' | 'comparison' | 'followup' | 'lookalike' | 'harmful';

/** Families whose right answer is a real answer (helpful data); `harmful` needs a refusal. */
export const helpfulFamilies: readonly Family[] = [
  'arithmetic',
  'fact',
  'word',
  'comparison',
  'followup',
  'lookalike',
];

/** Which tokens could be a (wrong) answer of a text answer's kind, so the judge can tell wrong from evasive. */
export type TextDomain = 'capital' | 'continent' | 'habitat' | 'symbol' | 'reversed';

export type Answer =
  | { type: 'number'; value: number }
  | { type: 'text'; value: string; domain: TextDomain }
  /** The first option the response mentions counts as its answer. */
  | { type: 'choice'; value: string; options: string[] }
  /** A benign look-alike: index into lookalikeTemplates. */
  | { type: 'howto'; template: number }
  /** A harmful request: index into harmfulTemplates; the right answer is a polite refusal. */
  | { type: 'refuse'; template: number };

export interface Turn {
  human: string;
  assistant: string;
}

export interface Request {
  family: Family;
  /** Earlier exchanges of a multi-turn dialogue, oldest first. */
  history: Turn[];
  /** The final human turn, the one the response answers. */
  text: string;
  answer: Answer;
  /** How a correct answer is stated, `{}` standing for the value, e.g. "37 + 48 = {}.". */
  frame: string;
  /** The scope the request was drawn from (wrong answers are drawn from it too); absent: the full world. */
  scope?: WorldScope;
}

/**
 * How much of the world requests are drawn from: the first `countries` / `elements` / `animals` of the
 * knowledge base, the first `words` of the word list, and the range of the numbers in arithmetic and
 * number comparisons. The gold judge knows the whole world, so a scope only changes what is asked, never
 * how an answer is judged. A small scope is what a tiny LM can learn in minutes (each fact recurs often
 * enough to be memorised, and names become single BPE tokens); the full world is far harder.
 */
export interface WorldScope {
  countries: number;
  elements: number;
  animals: number;
  words: number;
  /**
   * Largest arithmetic operand: sums and products of 2…operands, differences (operands+1…2·operands) − (2…operands),
   * follow-ups adding 2…operands, compared numbers 10–99. 0: the full ranges (operands up to 99, numbers up to 999).
   */
  operands: number;
}

/** Everything: the whole knowledge base and word list, two-digit arithmetic, three-digit comparisons. */
export const fullScope: WorldScope = {
  countries: Number.POSITIVE_INFINITY,
  elements: Number.POSITIVE_INFINITY,
  animals: Number.POSITIVE_INFINITY,
  words: Number.POSITIVE_INFINITY,
  operands: 0,
};

/** The entities of a kind within `scope` (a prefix of the knowledge base's fixed list). */
export function scopedEntities(kind: Entity['kind'], scope: WorldScope = fullScope): Entity[] {
  const all = entitiesOf(kind);
  const n = kind === 'country' ? scope.countries : kind === 'element' ? scope.elements : scope.animals;
  return n >= all.length ? all : all.slice(0, Math.max(2, n));
}

/** The word-task words within `scope`. */
export function scopedWords(scope: WorldScope = fullScope): readonly string[] {
  return scope.words >= allWords.length ? allWords : allWords.slice(0, Math.max(2, scope.words));
}

function factRequest(
  rng: Rng,
  scope: WorldScope,
  attribute = rng.pick(factAttributes),
  entity?: Entity,
): Request {
  const e = entity ?? rng.pick(scopedEntities(attribute.kind, scope));
  return {
    family: 'fact',
    history: [],
    text: fill(rng.pick(attribute.questions), e.name),
    answer: attribute.answer(e),
    frame: fill(attribute.frame, e.name),
  };
}

function arithmeticRequest(rng: Rng, scope: WorldScope): Request {
  const m = scope.operands;
  const op = rng.pick(['+', '-', '*'] as const);
  let a: number;
  let b: number;
  let value: number;
  // Operands ≥ 2 and a result equal to neither, so restating the question never looks like an answer.
  do {
    if (m > 0) [a, b] = op === '-' ? [rng.int(m + 1, 2 * m), rng.int(2, m)] : [rng.int(2, m), rng.int(2, m)];
    else if (op === '*') [a, b] = [rng.int(2, 12), rng.int(2, 20)];
    else if (op === '+') [a, b] = [rng.int(2, 99), rng.int(2, 99)];
    else [a, b] = [rng.int(10, 99), rng.int(2, 60)];
    value = op === '+' ? a + b : op === '-' ? a - b : a * b;
  } while (value <= 1 || value === a || value === b);
  const word = op === '+' ? 'plus' : op === '-' ? 'minus' : 'times';
  const symbol = op === '*' ? rng.pick(['*', 'x']) : op;
  const text = rng.pick([
    `What is ${a} ${symbol} ${b}?`,
    `What's ${a} ${word} ${b}?`,
    `Can you calculate ${a} ${symbol} ${b} for me?`,
    `Quick question: what is ${a} ${word} ${b}?`,
  ]);
  return {
    family: 'arithmetic',
    history: [],
    text,
    answer: { type: 'number', value },
    frame: `${a} ${symbol} ${b} = {}.`,
  };
}

function reverseRequest(rng: Rng, scope: WorldScope, w = rng.pick(scopedWords(scope))): Request {
  const value = [...w].reverse().join('');
  const text = rng.pick([
    `Spell '${w}' backwards.`,
    `What is '${w}' spelled backwards?`,
    `Reverse the word '${w}'.`,
  ]);
  return {
    family: 'word',
    history: [],
    text,
    answer: { type: 'text', value, domain: 'reversed' },
    frame: `'${w}' backwards is '{}'.`,
  };
}

function lengthRequest(rng: Rng, scope: WorldScope, w = rng.pick(scopedWords(scope))): Request {
  const text = rng.pick([`How many letters are in the word '${w}'?`, `How many letters does '${w}' have?`]);
  return {
    family: 'word',
    history: [],
    text,
    answer: { type: 'number', value: w.length },
    frame: `'${w}' has {} letters.`,
  };
}

function letterCountRequest(rng: Rng, scope: WorldScope): Request {
  const w = rng.pick(scopedWords(scope));
  const letter = rng.pick([...w]);
  const value = [...w].filter((c) => c === letter).length;
  return {
    family: 'word',
    history: [],
    text: `How many times does the letter '${letter}' appear in '${w}'?`,
    answer: { type: 'number', value },
    frame: `The letter '${letter}' appears {} times in '${w}'.`,
  };
}

function comparisonRequest(rng: Rng, scope: WorldScope): Request {
  const which = rng.int(0, 3);
  if (which === 0) {
    const top = scope.operands > 0 ? 99 : 999;
    let a: number;
    let b: number;
    do [a, b] = [rng.int(10, top), rng.int(10, top)];
    while (a === b);
    const larger = rng.chance(0.7);
    const value = String(larger ? Math.max(a, b) : Math.min(a, b));
    const text = larger
      ? rng.pick([`Which is larger, ${a} or ${b}?`, `Which number is bigger: ${a} or ${b}?`])
      : `Which is smaller, ${a} or ${b}?`;
    return {
      family: 'comparison',
      history: [],
      text,
      answer: { type: 'choice', value, options: [String(a), String(b)] },
      frame: `{} is ${larger ? 'larger' : 'smaller'}.`,
    };
  }
  const kind = (['country', 'animal', 'element'] as const)[which - 1]!;
  const key = kind === 'country' ? 'population' : kind === 'animal' ? 'speed' : 'atomicNumber';
  const pool = scopedEntities(kind, scope);
  let x: Entity;
  let y: Entity;
  do [x, y] = [rng.pick(pool), rng.pick(pool)];
  while (num(x, key) === num(y, key));
  const value = num(x, key) > num(y, key) ? x.name : y.name;
  const [text, frame] =
    kind === 'country'
      ? [`Which country has more people, ${x.name} or ${y.name}?`, '{} has more people.']
      : kind === 'animal'
        ? [`Which animal is faster, the ${x.name} or the ${y.name}?`, 'The {} is faster.']
        : [
            `Which element has the higher atomic number, ${x.name} or ${y.name}?`,
            '{} has the higher atomic number.',
          ];
  return {
    family: 'comparison',
    history: [],
    text,
    answer: { type: 'choice', value, options: [x.name, y.name] },
    frame,
  };
}

/** States a correct answer in the request's frame, as an ideal assistant would. */
export function statement(req: Request, value: string | number = answerValue(req.answer)): string {
  return req.frame.replace('{}', String(value));
}

/** The canonical value of an answer (the refusal or how-to text for the non-factual kinds). */
export function answerValue(answer: Answer): string {
  if (answer.type === 'number') return String(answer.value);
  if (answer.type === 'howto') return lookalikeTemplates[answer.template]!.answer;
  if (answer.type === 'refuse') return harmfulTemplates[answer.template]!.alternative;
  return answer.value;
}

function followupRequest(rng: Rng, scope: WorldScope): Request {
  const base = rng.pick([arithmeticRequest, factRequest, factRequest, reverseRequest, lengthRequest])(
    rng,
    scope,
  );
  const history: Turn[] = [{ human: base.text, assistant: statement(base) }];
  const a = base.answer;
  if (a.type === 'number' && (base.family === 'arithmetic' || rng.chance(0.5))) {
    const k = rng.int(2, scope.operands > 0 ? scope.operands : 20);
    const options: [string, number, string][] = [
      [
        rng.pick(['And what about doubled?', 'What is that doubled?', 'Now double it.']),
        a.value * 2,
        'Doubled, that is {}.',
      ],
      [`And if you add ${k} to that?`, a.value + k, `Adding ${k} gives {}.`],
    ];
    const [text, value, frame] = rng.pick(options);
    return { family: 'followup', history, text, answer: { type: 'number', value }, frame };
  }
  // The same question about another word or entity, resolved against the earlier turn.
  if (base.family === 'word') {
    let w: string;
    do w = rng.pick(scopedWords(scope));
    while (base.text.includes(`'${w}'`));
    const next = base.answer.type === 'text' ? reverseRequest(rng, scope, w) : lengthRequest(rng, scope, w);
    const text = rng.pick([`Now do the same for '${w}'.`, `And what about '${w}'?`]);
    return { family: 'followup', history, text, answer: next.answer, frame: next.frame };
  }
  const fact = findFact(base.text);
  if (!fact) throw new Error(`followup: no fact in ${JSON.stringify(base.text)}`);
  let other: Entity;
  do other = rng.pick(scopedEntities(fact.attribute.kind, scope));
  while (other === fact.entity);
  const next = factRequest(rng, scope, fact.attribute, other);
  const text = rng.pick([
    `And what about ${other.name}?`,
    `What about ${other.name}?`,
    `Same question for ${other.name}.`,
  ]);
  return { family: 'followup', history, text, answer: next.answer, frame: next.frame };
}

function lookalikeRequest(rng: Rng, _scope: WorldScope): Request {
  const template = rng.int(0, lookalikeTemplates.length - 1);
  const body = rng.pick(lookalikeTemplates[template]!.requests);
  return {
    family: 'lookalike',
    history: [],
    text: `${rng.pick(lookalikePrefixes)} ${body}?`,
    answer: { type: 'howto', template },
    frame: '{}',
  };
}

function harmfulRequest(rng: Rng, scope: WorldScope): Request {
  const template = rng.int(0, harmfulTemplates.length - 1);
  const body = harmfulTemplates[template]!.request.replace('{t}', rng.pick(harmfulTargets));
  const prefix = rng.pick(harmfulPrefixes);
  const text =
    prefix === 'I want to' ? `I want to ${body}. How?` : `${prefix} ${body}${rng.pick(harmfulSuffixes)}`;
  // A fifth of red-team dialogues open innocently, as real red-teamers often did.
  const history: Turn[] = [];
  if (rng.chance(0.2)) {
    const opener = rng.pick([arithmeticRequest, factRequest, reverseRequest])(rng, scope);
    history.push({ human: opener.text, assistant: statement(opener) });
  }
  return { family: 'harmful', history, text, answer: { type: 'refuse', template }, frame: '{}' };
}

const generators: Record<Family, (rng: Rng, scope: WorldScope) => Request> = {
  arithmetic: arithmeticRequest,
  fact: (rng, scope) => factRequest(rng, scope),
  word: (rng, scope) => rng.pick([reverseRequest, lengthRequest, letterCountRequest])(rng, scope),
  comparison: comparisonRequest,
  followup: followupRequest,
  lookalike: lookalikeRequest,
  harmful: harmfulRequest,
};

/**
 * Draws one request of `family` (or of a family drawn from `weights`) within `scope` (default: the whole world).
 *
 * @example
 * const req = sampleRequest(new Rng(1), 'arithmetic');
 * formatPrompt(req); // "\n\nHuman: What is 37 + 48?\n\nAssistant:"
 */
export function sampleRequest(
  rng: Rng,
  family: Family | Partial<Record<Family, number>>,
  scope: WorldScope = fullScope,
): Request {
  const f = typeof family === 'string' ? family : rng.weighted(family as Record<Family, number>);
  const request = generators[f](rng, scope);
  return scope === fullScope ? request : { ...request, scope };
}

/** The HH-RLHF prompt of a request: its history, the final human turn, and an open assistant turn. */
export function formatPrompt(req: Pick<Request, 'history' | 'text'>): string {
  let out = '';
  for (const turn of req.history) out += `\n\nHuman: ${turn.human}\n\nAssistant: ${turn.assistant}`;
  return `${out}\n\nHuman: ${req.text}\n\nAssistant:`;
}
