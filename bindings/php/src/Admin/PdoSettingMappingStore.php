<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

/**
 * The mapping document in FaShop's settings table: the row `fa_setting` with
 * `key='wechat_mini_template'`, whose `config` JSON FaShop designed as
 * `{"template_list": [{"template_id", "template_name", "template_status"}…]}` per
 * event and never read. The row keeps that list (filled from the document, so
 * the old screens show the right templates) and adds the document under `mapping`.
 *
 * Works on MySQL (FaShop's database) and SQLite (tests) through PDO.
 */
final class PdoSettingMappingStore implements MappingStore
{
    public const KEY = 'wechat_mini_template';

    public function __construct(
        private \PDO $pdo,
        private string $table = 'fa_setting',
        private string $key = self::KEY,
    ) {
        if (!preg_match('/^[A-Za-z_][A-Za-z0-9_]{0,63}$/', $table)) {
            throw new \InvalidArgumentException("table name must be letters, digits and _, got $table");
        }
        $this->pdo->setAttribute(\PDO::ATTR_ERRMODE, \PDO::ERRMODE_EXCEPTION);
    }

    public function load(): ?string
    {
        return self::documentOf($this->row(false));
    }

    public function update(callable $change, array $templateTitles = []): string
    {
        try {
            $this->pdo->beginTransaction();
        } catch (\PDOException $e) {
            throw new StoreUnavailable('cannot start a transaction on the settings table: ' . $e->getMessage(), 0, $e);
        }
        try {
            $row = $this->row(true);
            $next = $change(self::documentOf($row));
            $config = self::withTemplateList($row, $next, $templateTitles);
            if ($row === null) {
                $st = $this->pdo->prepare("INSERT INTO {$this->table} (`key`, `config`) VALUES (?, ?)");
                $st->execute([$this->key, $config]);
            } else {
                $st = $this->pdo->prepare("UPDATE {$this->table} SET `config` = ? WHERE `key` = ?");
                $st->execute([$config, $this->key]);
            }
            $this->pdo->commit();
            return $next;
        } catch (\Throwable $e) {
            if ($this->pdo->inTransaction()) {
                $this->pdo->rollBack();
            }
            if ($e instanceof \PDOException) {
                throw new StoreUnavailable('cannot save the mapping in ' . $this->table . ': ' . $e->getMessage(), 0, $e);
            }
            throw $e;
        }
    }

    /** The row's config text; null when there is no row. Locks it for the transaction on MySQL. */
    private function row(bool $forUpdate): ?string
    {
        $lock = $forUpdate && $this->pdo->getAttribute(\PDO::ATTR_DRIVER_NAME) === 'mysql' ? ' FOR UPDATE' : '';
        try {
            $st = $this->pdo->prepare("SELECT `config` FROM {$this->table} WHERE `key` = ?$lock");
            $st->execute([$this->key]);
            $v = $st->fetchColumn();
        } catch (\PDOException $e) {
            throw new StoreUnavailable('cannot read ' . $this->table . ': ' . $e->getMessage(), 0, $e);
        }
        return $v === false || $v === null ? null : (string) $v;
    }

    /** The mapping document inside a row's config; null for FaShop's own row without one. */
    private static function documentOf(?string $config): ?string
    {
        if ($config === null || trim($config) === '') {
            return null;
        }
        $v = json_decode($config, true);
        if (!is_array($v) || !isset($v['mapping']) || !is_array($v['mapping'])) {
            return null;
        }
        return json_encode($v['mapping'], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR);
    }

    /** The row's new config: what it had, the document under `mapping`, and FaShop's template_list from it. */
    /** @param array<string,string> $titles */
    private static function withTemplateList(?string $old, string $document, array $titles): string
    {
        $config = $old === null ? [] : json_decode($old, true);
        $config = is_array($config) ? $config : [];
        $doc = json_decode($document, true, 512, JSON_THROW_ON_ERROR);
        foreach ($config['template_list'] ?? [] as $entry) {
            if (is_array($entry) && isset($entry['template_id'], $entry['template_name'])) {
                $titles[$entry['template_id']] ??= $entry['template_name'];
            }
        }
        $list = [];
        foreach ($doc['events'] ?? [] as $event => $m) {
            $list[] = [
                'event' => $event,
                'template_id' => $m['template_id'] ?? '',
                'template_name' => $titles[$m['template_id'] ?? ''] ?? '',
                'template_status' => ($m['enabled'] ?? true) ? 1 : 0,
            ];
        }
        $config['template_list'] = $list;
        $config['mapping'] = $doc;
        return json_encode($config, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR);
    }
}
