<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

/**
 * The app's subscribe templates as WeChat's `gettemplate` lists them, read into
 * keywords: `content` says `订单号:{{character_string1.DATA}}` per line, so each
 * keyword has its name (what a mapping fills), its label, and its type (the
 * name's prefix, which gives WeChat's value rule).
 */
final class TemplateList
{
    /**
     * @param array<string,mixed> $answer WeChat's gettemplate answer
     * @param array<string,array<string,mixed>>|null $types keyword types by prefix (TemplateCheck::keywordTypes)
     * @return array<string,array<string,mixed>> template id => template
     */
    public static function fromAnswer(array $answer, ?array $types): array
    {
        $list = [];
        foreach ($answer['data'] ?? [] as $t) {
            if (!is_array($t) || !isset($t['priTmplId'])) {
                continue;
            }
            $id = (string) $t['priTmplId'];
            $list[$id] = [
                'id' => $id,
                'title' => (string) ($t['title'] ?? ''),
                'type' => (int) ($t['type'] ?? 2),
                'content' => (string) ($t['content'] ?? ''),
                'keywords' => self::keywords((string) ($t['content'] ?? ''), (string) ($t['example'] ?? ''), $types),
            ];
        }
        return $list;
    }

    /**
     * @param array<string,array<string,mixed>>|null $types
     * @return list<array<string,mixed>> name, label, type, limit, rule, type_examples, example (this template's)
     */
    public static function keywords(string $content, string $example, ?array $types): array
    {
        preg_match_all('/([^\n:：{}]*)[:：]?\s*\{\{\s*([A-Za-z_]+\d+)\.DATA\s*\}\}/u', $content, $m, PREG_SET_ORDER);
        $examples = [];
        foreach (preg_split('/\R/u', $example) ?: [] as $line) {
            $parts = preg_split('/[:：]/u', $line, 2);
            if (is_array($parts) && count($parts) === 2) {
                $examples[trim($parts[0])] = trim($parts[1]);
            }
        }
        $keywords = [];
        foreach ($m as [, $label, $name]) {
            $label = trim($label);
            $prefix = self::prefix($name);
            $type = $types[$prefix] ?? null;
            $keywords[] = [
                'name' => $name,
                'label' => $label,
                'type' => $prefix,
                'type_label' => $type['label'] ?? null,
                'limit' => $type === null ? null : ($type['max_chars'] ?? null),
                'rule' => $type['rule'] ?? null,
                'type_examples' => $type['examples'] ?? [],
                'example' => $examples[$label] ?? null,
            ];
        }
        return $keywords;
    }

    /** `thing3` → `thing`, `character_string12` → `character_string`. */
    public static function prefix(string $keyword): string
    {
        return preg_match('/^([A-Za-z_]+?)\d+$/', $keyword, $m) ? $m[1] : $keyword;
    }
}
