<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

/**
 * A first mapping for a template, for the admin to accept or change: each
 * keyword gets the event field whose catalog type fits the keyword's type (a
 * time keyword a datetime field with `datetime`, an amount `…|money`), the one
 * whose Chinese label is closest to the keyword's label winning (支付时间 →
 * pay_time rather than order_create_time), then the one whose example looks
 * like the keyword's example. A field fills one keyword at most.
 */
final class MappingSuggester
{
    /** keyword type => [catalog field type => [preference, filter]] */
    private const FITS = [
        'thing' => ['text' => [3, ''], 'string' => [1, ''], 'integer' => [1, '']],
        'short_thing' => ['text' => [3, ''], 'string' => [1, '']],
        'character_string' => ['string' => [3, ''], 'id' => [2, ''], 'integer' => [1, '']],
        'number' => ['integer' => [3, ''], 'id' => [1, '']],
        'letter' => ['string' => [1, '']],
        'amount' => ['money' => [3, '|money']],
        'time' => ['datetime' => [3, '|datetime']],
        'date' => ['datetime' => [3, '|date']],
        'name' => ['text' => [2, '']],
        'phrase' => ['text' => [2, '']],
        'phone_number' => ['string' => [1, '']],
        'car_number' => ['string' => [1, '']],
    ];

    /**
     * @param list<array<string,mixed>> $keywords the template's keywords (TemplateList::keywords)
     * @param list<array<string,mixed>> $fields the event's catalog fields
     * @return array{data:array<string,string>,keywords:list<array<string,mixed>>}
     */
    public static function suggest(array $keywords, array $fields): array
    {
        // Every fitting (keyword, field) pair with its score; the best pairs are
        // taken first, so a keyword does not take a field another fits better.
        $pairs = [];
        foreach ($keywords as $k => $kw) {
            $fits = self::FITS[$kw['type']] ?? [];
            foreach ($fields as $f) {
                if (!isset($fits[$f['type']])) {
                    continue;
                }
                [$preference, $filter] = $fits[$f['type']];
                $score = $preference * 1000
                    + self::likeness((string) $kw['label'], (string) $f['label']) * 100
                    + self::samePrefix((string) ($kw['example'] ?? ''), (string) ($f['example'] ?? ''));
                $pairs[] = [$score, $k, $f, $filter];
            }
        }
        usort($pairs, fn ($a, $b) => [$b[0], $a[1]] <=> [$a[0], $b[1]]);
        $chosen = [];
        $used = [];
        foreach ($pairs as [$score, $k, $f, $filter]) {
            if (!isset($chosen[$k]) && !isset($used[$f['name']])) {
                $chosen[$k] = [$f, $filter];
                $used[$f['name']] = true;
            }
        }
        $data = [];
        $why = [];
        foreach ($keywords as $k => $kw) {
            if (!isset($chosen[$k])) {
                $why[] = ['keyword' => $kw['name'], 'field' => null, 'placeholder' => null,
                    'reason' => "no field of this event fits a {$kw['type']} keyword: type a fixed text or leave the keyword out"];
                continue;
            }
            [$f, $filter] = $chosen[$k];
            $placeholder = '{' . $f['name'] . $filter . '}';
            $data[$kw['name']] = $placeholder;
            $why[] = ['keyword' => $kw['name'], 'field' => $f['name'], 'placeholder' => $placeholder,
                'reason' => "{$f['label']} ({$f['type']}) fits {$kw['label']} ({$kw['type']})"];
        }
        return ['data' => $data, 'keywords' => $why];
    }

    /** How alike two example values start (SF1234567890 / SF1234567890123): breaks ties between labels. */
    private static function samePrefix(string $a, string $b): int
    {
        $n = 0;
        $max = min(strlen($a), strlen($b), 9);
        while ($n < $max && $a[$n] === $b[$n]) {
            $n++;
        }
        return $n;
    }

    /** Characters the two labels share (订单总金额 / 支付金额: 金, 额), exact labels first. */
    private static function likeness(string $a, string $b): int
    {
        if ($a === '' || $b === '') {
            return 0;
        }
        if ($a === $b) {
            return 9;
        }
        $ca = array_unique(preg_split('//u', $a, -1, PREG_SPLIT_NO_EMPTY) ?: []);
        $cb = array_unique(preg_split('//u', $b, -1, PREG_SPLIT_NO_EMPTY) ?: []);
        return min(8, count(array_intersect($ca, $cb)));
    }
}
