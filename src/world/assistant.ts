import { type Country, continents, type Element, habitats, knowledgeBase } from './knowledge.ts';
import {
  type Answer,
  answerValue,
  fullScope,
  type Request,
  sampleRequest,
  scopedEntities,
  statement,
  type WorldScope,
} from './requests.ts';
import type { Rng } from './rng.ts';
import {
  boilerplateRefusals,
  evasions,
  fillers,
  harmfulTemplates,
  lookalikeTemplates,
  rudePrefixes,
} from './templates.ts';

/**
 * The noisy base assistant: writes responses of a chosen quality, so the world's data has the spread
 * of good and bad answers a base LM produces. On a harmful request "correct" means the ideal polite
 * refusal and "harmful" means compliance (placeholder text only); on a benign request "harmful" is a
 * rude answer and "refusal" is an over-refusal.
 */

export const responseKinds = ['correct', 'wrong', 'evasive', 'rambling', 'harmful', 'refusal'] as const;
export type ResponseKind = (typeof responseKinds)[number];
export type ResponseMix = Record<ResponseKind, number>;

/** Proportions of each kind in the pretraining corpus and comparison data, unless configured. */
export const defaultMix: ResponseMix = {
  correct: 0.32,
  wrong: 0.2,
  evasive: 0.1,
  rambling: 0.1,
  harmful: 0.12,
  refusal: 0.16,
};

/** Families whose questions a wrong answer can misread as another question of the same family. */
const misreadable = new Set<Request['family']>(['arithmetic', 'fact', 'word']);

/** A frame with its subjects masked: quoted words, numbers and entity names ("The capital of E is {}."). */
function shape(frame: string): string {
  const names = knowledgeBase().byName;
  return frame
    .replace(/'[a-z]+'/g, "'W'")
    .replace(/\d+/g, 'N')
    .replace(/[A-Za-z]+/g, (w) => (names.has(w.toLowerCase()) ? 'E' : w));
}

/**
 * The same question about another subject (another entity, operands or word; same attribute, operation or
 * word task), or undefined when the scope has none: what a reader who misread the question answers.
 */
function misreading(rng: Rng, req: Request): Request | undefined {
  const want = shape(req.frame);
  for (let tries = 0; tries < 40; tries++) {
    const other = sampleRequest(rng, req.family, req.scope ?? fullScope);
    // Another subject with another answer ("4 x 3" for "3 x 4" is no misreading).
    const differs = other.frame !== req.frame && answerValue(other.answer) !== answerValue(req.answer);
    if (differs && shape(other.frame) === want) return other;
  }
  return undefined;
}

/** The placeholder that stands for harmful content everywhere in the world. */
export const harmfulPlaceholder = '[harmful instructions omitted]';

/** A plausible wrong value of the same type as the answer (never the right one), from the request's scope. */
export function wrongValue(rng: Rng, answer: Answer, scope: WorldScope = fullScope): string {
  const countries = scopedEntities('country', scope) as Country[];
  const elements = scopedEntities('element', scope) as Element[];
  if (answer.type === 'number') {
    const v = answer.value;
    const spread = Math.max(3, Math.round(Math.abs(v) * 0.3));
    let w: number;
    do w = v + (rng.chance(0.5) ? 1 : -1) * rng.int(1, spread);
    while (w === v || w < 0);
    return String(w);
  }
  if (answer.type === 'choice') return rng.pick(answer.options.filter((o) => o !== answer.value));
  if (answer.type !== 'text') return answerValue(answer);
  const others = (pool: readonly string[]): string => rng.pick(pool.filter((x) => x !== answer.value));
  switch (answer.domain) {
    case 'capital':
      return others(countries.map((c) => c.capital));
    case 'continent':
      return others(continents);
    case 'habitat':
      return others(habitats);
    case 'symbol':
      return others(elements.map((e) => e.symbol));
    case 'reversed': {
      // Two adjacent letters swapped, or the word left unreversed: the typical slips.
      const letters = [...answer.value];
      if (rng.chance(0.3)) return letters.reverse().join('');
      for (let tries = 0; tries < 20; tries++) {
        const i = rng.int(0, letters.length - 2);
        const swapped = letters.slice();
        [swapped[i], swapped[i + 1]] = [swapped[i + 1]!, swapped[i]!];
        if (swapped.join('') !== answer.value) return swapped.join('');
      }
      return `${answer.value}s`;
    }
  }
}

function ramble(rng: Rng, core: string): string {
  const before = Array.from({ length: rng.int(3, 6) }, () => rng.pick(fillers));
  const after = Array.from({ length: rng.int(1, 3) }, () => rng.pick(fillers));
  return [...before, core, ...after].join(' ');
}

function idealRefusal(rng: Rng, template: number): string {
  const alternative = harmfulTemplates[template]!.alternative;
  const why = rng.pick([
    'it could seriously hurt someone',
    'it could cause real harm',
    'it would hurt other people',
  ]);
  return rng.pick([
    `I'm sorry, but I can't help with that, because ${why}. I'd be happy to help with ${alternative} instead.`,
    `I can't help with that, since ${why}. If you'd like, I can help with ${alternative}.`,
  ]);
}

function complianceText(rng: Rng): string {
  return rng.pick([
    `Sure! Here's how to do it: ${harmfulPlaceholder}`,
    `Of course. Step 1: ${harmfulPlaceholder} Step 2: ${harmfulPlaceholder}`,
    `Okay, the trick is this: ${harmfulPlaceholder}`,
  ]);
}

/**
 * A response of the given kind to a request. A rambling or rude answer states a wrong value with
 * probability `wrongRate` (the mix's share of wrong among its answers), as often as a plain one does.
 *
 * @example
 * const req = sampleRequest(new Rng(1), 'arithmetic');
 * respond(new Rng(2), req, 'wrong'); // e.g. "37 + 48 = 83."
 */
export function respond(
  rng: Rng,
  req: Request,
  kind: ResponseKind,
  opts: { wrongRate: number } = { wrongRate: wrongRateOf(defaultMix) },
): string {
  const a = req.answer;
  if (a.type === 'refuse') {
    switch (kind) {
      case 'correct':
        return idealRefusal(rng, a.template);
      case 'harmful':
        return complianceText(rng);
      case 'refusal':
        return rng.pick(boilerplateRefusals);
      case 'evasive':
        return rng.pick(evasions);
      case 'rambling':
        return ramble(
          rng,
          `Doing that would be wrong and could get you in trouble. ${rng.pick(boilerplateRefusals)}`,
        );
      case 'wrong':
        // Misreads the request and answers something else entirely.
        return rng.pick([
          'I think you should go for a walk first.',
          'The weather is lovely today.',
          'Have you tried turning it off and on again?',
        ]);
    }
  }
  const howto = a.type === 'howto' ? lookalikeTemplates[a.template]! : undefined;
  const good = howto ? howto.answer : statement(req);
  const bad = (): string => {
    if (howto) return rng.pick(lookalikeTemplates.filter((t) => t !== howto)).answer;
    // Half the wrong answers misread the question: a true statement about another subject ("5 + 5 = 10." to
    // "What is 5 + 4?", the capital of the wrong country), the other half a wrong value for the right one.
    if (misreadable.has(req.family) && rng.chance(0.5)) {
      const misread = misreading(rng, req);
      if (misread) return statement(misread);
    }
    return statement(req, wrongValue(rng, a, req.scope));
  };
  // Style and correctness are independent: an eager ("Sure!"), rambling or rude answer is as often wrong as
  // a plain one, so no surface cue tells a right answer from a wrong one — only knowing the answer does.
  const content = (): string => (rng.chance(opts.wrongRate) ? bad() : good);
  const eager = (text: string): string => (rng.chance(0.25) ? `Sure! ${text}` : text);
  switch (kind) {
    case 'correct':
      return eager(good);
    case 'wrong':
      return eager(bad());
    case 'evasive':
      return rng.pick(evasions);
    case 'rambling':
      return ramble(rng, content());
    case 'harmful':
      return `${rng.pick(rudePrefixes)} ${content()}`;
    case 'refusal': {
      const verb = howto
        ? /\b(kill|shoot|steal|attack|crack|destroy|poison|break|knock|blow|beat)\b/i.exec(req.text)?.[1]
        : undefined;
      return verb && rng.chance(0.5)
        ? `I'm sorry, but I can't help with anything involving how to ${verb.toLowerCase()}.`
        : rng.pick(boilerplateRefusals);
    }
  }
}

/**
 * Draws a kind from `mix` and writes that response.
 *
 * @example sampleResponse(new Rng(3), req).kind // 'correct' about a third of the time by default
 */
export function sampleResponse(
  rng: Rng,
  req: Request,
  mix: ResponseMix = defaultMix,
): { kind: ResponseKind; text: string } {
  const kind = rng.weighted(mix);
  return { kind, text: respond(rng, req, kind, { wrongRate: wrongRateOf(mix) }) };
}

/** How often an answer of the mix is wrong among its answers: wrong / (correct + wrong). */
export function wrongRateOf(mix: ResponseMix): number {
  const answers = mix.correct + mix.wrong;
  return answers > 0 ? mix.wrong / answers : 0;
}
