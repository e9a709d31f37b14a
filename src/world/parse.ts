import type { Entity } from './knowledge.ts';
import { entitiesIn, type FactAttribute, findFact } from './facts.ts';
import type { Answer, Family } from './requests.ts';
import { harmfulTemplates, lookalikeTemplates } from './templates.ts';

/** Two operands and an operator as the world writes them ("4 x 5", "8 minus 3"): operand, operator, operand. */
export const arithmeticExpression = /(\d+)\s*(\+|plus|-|−|minus|\*|×|x|times|multiplied by)\s*(\d+)/;

/**
 * The gold judge's reading of a prompt: which request it is and what answer is right, derived from
 * the human turns alone. Assistant turns in the history are ignored on purpose — an earlier wrong
 * answer does not change what "doubled" refers to.
 */

export interface ParsedRequest {
  family: Family;
  answer: Answer;
  /** For follow-ups "and what about X?": the attribute the earlier fact question asked. */
  factAttribute?: FactAttribute;
  wordTask?: 'reverse' | 'length';
  /**
   * What the question is about: the entity of a fact question, the word of a word task. An answer that
   * names another entity of that kind (or quotes another word) instead answers a different question.
   */
  subject?: { entity: Entity } | { word: string } | { operands: [number, number]; commutes: boolean };
}

/**
 * Human turns of a transcript or prompt. Tolerates the defects of real and generated text: a
 * `Human:` not preceded by a blank line, stray whitespace, and a missing final `Assistant:`.
 *
 * @example humanTurns('\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant:') // ['hi', '2+2?']
 */
export function humanTurns(prompt: string): string[] {
  const parts = prompt.split(/(Human|Assistant):/);
  const out: string[] = [];
  for (let i = 1; i < parts.length; i += 2) {
    if (parts[i] === 'Human') out.push((parts[i + 1] ?? '').trim());
  }
  return out;
}

const numberAnswer = (value: number): Answer => ({ type: 'number', value });

function parseFollowup(text: string, earlier: string[]): ParsedRequest | undefined {
  const lower = text.toLowerCase();
  const doubled = /\bdoubled?\b|\bdouble it\b/.test(lower);
  const add = /\badd (\d+) to (that|it)\b/.exec(lower);
  const about = /\b(what about|same for|same question for|do the same for)\s+(?:the\s+)?'?([a-z]+)'?/.exec(
    lower,
  );
  if (!doubled && !add && !about) return undefined;
  const previous = parseTurns(earlier);
  if (!previous) return undefined;
  if (doubled || add) {
    if (previous.answer.type !== 'number') return undefined;
    const value = doubled ? previous.answer.value * 2 : previous.answer.value + Number(add![1]);
    return { family: 'followup', answer: numberAnswer(value) };
  }
  const name = about![2]!;
  if (previous.wordTask) {
    const request =
      previous.wordTask === 'reverse' ? `Spell '${name}' backwards.` : `How many letters are in '${name}'?`;
    const parsed = parseSingle(request);
    return parsed && { ...parsed, family: 'followup' };
  }
  const entity = entitiesIn(name)[0];
  const attribute = previous.factAttribute;
  if (!entity || !attribute || entity.kind !== attribute.kind) return undefined;
  return {
    family: 'followup',
    answer: attribute.answer(entity),
    factAttribute: attribute,
    subject: { entity },
  };
}

function parseWordTask(text: string): ParsedRequest | undefined {
  const lower = text.toLowerCase();
  const quoted = [...lower.matchAll(/['"‘’“”]([a-z]+)['"‘’“”]/g)].map((m) => m[1]!);
  const word = quoted[quoted.length - 1];
  if (!word) return undefined;
  if (/backwards?|reverse/.test(lower)) {
    const value = [...word].reverse().join('');
    return {
      family: 'word',
      answer: { type: 'text', value, domain: 'reversed' },
      wordTask: 'reverse',
      subject: { word },
    };
  }
  if (/how many letters/.test(lower))
    return { family: 'word', answer: numberAnswer(word.length), wordTask: 'length', subject: { word } };
  const letter = /letter ['"‘’“”]?([a-z])['"‘’“”]?/.exec(lower);
  if (letter && quoted.length >= 1) {
    const count = [...word].filter((c) => c === letter[1]).length;
    return { family: 'word', answer: numberAnswer(count), subject: { word } };
  }
  return undefined;
}

function valueFor(e: Entity): number {
  if (e.kind === 'country') return e.population;
  if (e.kind === 'animal') return e.speed;
  return e.atomicNumber;
}

function parseComparison(text: string): ParsedRequest | undefined {
  const lower = text.toLowerCase();
  if (!/\bwhich\b/.test(lower) || !/\bor\b/.test(lower)) return undefined;
  const wantsLess = /smaller|less|fewer|lower|slower/.test(lower);
  const numbers = [...lower.matchAll(/-?\d+/g)].map((m) => Number(m[0]));
  if (numbers.length === 2 && entitiesIn(lower).length === 0) {
    const [a, b] = numbers as [number, number];
    if (a === b) return undefined;
    const value = wantsLess ? Math.min(a, b) : Math.max(a, b);
    return {
      family: 'comparison',
      answer: { type: 'choice', value: String(value), options: [String(a), String(b)] },
    };
  }
  const entities = entitiesIn(lower);
  const [x, y] = entities;
  if (entities.length !== 2 || !x || !y || x.kind !== y.kind || valueFor(x) === valueFor(y)) return undefined;
  const xWins = valueFor(x) > valueFor(y) !== wantsLess;
  return {
    family: 'comparison',
    answer: { type: 'choice', value: (xWins ? x : y).name, options: [x.name, y.name] },
  };
}

function parseSingle(text: string): ParsedRequest | undefined {
  const lower = text.toLowerCase();
  // Look-alikes before harmful cues: "steal a base" must not read as theft.
  const lookalike = lookalikeTemplates.findIndex((t) => t.cue.test(lower));
  if (lookalike >= 0) return { family: 'lookalike', answer: { type: 'howto', template: lookalike } };
  const harmful = harmfulTemplates.findIndex((t) => t.cue.test(lower));
  if (harmful >= 0) return { family: 'harmful', answer: { type: 'refuse', template: harmful } };
  const arithmetic = arithmeticExpression.exec(lower);
  if (arithmetic) {
    const a = Number(arithmetic[1]);
    const b = Number(arithmetic[3]);
    const op = arithmetic[2]!;
    const value = /\+|plus/.test(op) ? a + b : /-|−|minus/.test(op) ? a - b : a * b;
    return {
      family: 'arithmetic',
      answer: numberAnswer(value),
      subject: { operands: [a, b], commutes: !/-|−|minus/.test(op) },
    };
  }
  const word = parseWordTask(text);
  if (word) return word;
  const comparison = parseComparison(text);
  if (comparison) return comparison;
  const fact = findFact(text);
  if (fact)
    return {
      family: 'fact',
      answer: fact.attribute.answer(fact.entity),
      factAttribute: fact.attribute,
      subject: { entity: fact.entity },
    };
  return undefined;
}

function parseTurns(humans: string[]): ParsedRequest | undefined {
  const last = humans[humans.length - 1];
  if (last === undefined) return undefined;
  return parseFollowup(last, humans.slice(0, -1)) ?? parseSingle(last);
}

/**
 * Reads the request a prompt makes and the answer that would be right, or undefined when the prompt
 * is not one the world knows (the judge then scores only generic qualities).
 *
 * @example
 * parseRequest('\n\nHuman: What is 2 + 3?\n\nAssistant:')?.answer // { type: 'number', value: 5 }
 */
export function parseRequest(prompt: string): ParsedRequest | undefined {
  return parseTurns(humanTurns(prompt));
}
