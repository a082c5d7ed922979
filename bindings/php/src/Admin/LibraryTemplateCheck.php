<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

use FaShop\Notify\Notifier;

/**
 * TemplateCheck through the library's own exports (`Notifier::checkMappings`,
 * `Notifier::keywordTypes`). Their answers are brought to the shapes of
 * TemplateCheck here, so the admin depends on this one class only.
 */
final class LibraryTemplateCheck implements TemplateCheck
{
    /** @var array<string,array<string,mixed>>|null */
    private ?array $types = null;

    public function __construct(private Notifier $notifier)
    {
    }

    public function available(): bool
    {
        return method_exists($this->notifier, 'checkMappings') && method_exists($this->notifier, 'keywordTypes');
    }

    public function check(string $appid, string $documentJson, bool $refresh = false): ?array
    {
        if (!method_exists($this->notifier, 'checkMappings')) {
            return null;
        }
        $report = $this->notifier->checkMappings($appid, $documentJson, $refresh);
        $list = $report['problems'] ?? (array_is_list($report) ? $report : []);
        foreach ($report['warnings'] ?? [] as $w) {
            $list[] = (is_array($w) ? $w : ['message' => (string) $w]) + ['severity' => 'warning'];
        }
        $problems = [];
        foreach ($list as $p) {
            if (!is_array($p)) {
                $p = ['message' => (string) $p];
            }
            $problems[] = [
                'path' => (string) ($p['path'] ?? ''),
                'message' => (string) ($p['message'] ?? $p['problem'] ?? $p['what'] ?? json_encode($p, JSON_UNESCAPED_UNICODE)),
                'severity' => (string) ($p['severity'] ?? $p['level'] ?? 'error'),
            ] + (isset($p['kind']) ? ['kind' => (string) $p['kind']] : []);
        }
        return $problems;
    }

    public function keywordTypes(): ?array
    {
        if ($this->types !== null) {
            return $this->types;
        }
        if (!method_exists($this->notifier, 'keywordTypes')) {
            return null;
        }
        $answer = $this->notifier->keywordTypes();
        $list = $answer['types'] ?? $answer;
        $types = [];
        foreach ($list as $key => $t) {
            if (!is_array($t)) {
                continue;
            }
            // One entry per keyword prefix the type covers.
            $prefixes = $t['prefixes'] ?? [$t['prefix'] ?? $t['type'] ?? $key];
            foreach ((array) $prefixes as $prefix) {
                $types[(string) $prefix] = $t + [
                    'label' => $t['label'] ?? null,
                    'max_chars' => $t['max_chars'] ?? $t['limit'] ?? null,
                    // The page is Chinese; `allowed` keeps the library's English.
                    'rule' => $t['rule'] ?? ChineseTexts::rule((string) ($t['type'] ?? $prefix)) ?? $t['allowed'] ?? '',
                ];
            }
        }
        return $this->types = $types;
    }
}
