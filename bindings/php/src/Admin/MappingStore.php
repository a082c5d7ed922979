<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

/**
 * Where the shop keeps its mapping document (one JSON document for all events).
 * The admin changes one event at a time, so a change is read-modify-write under
 * the store's lock: two admins saving different events both keep their change.
 */
interface MappingStore
{
    /** The saved document as JSON text; null when nothing was saved yet. */
    public function load(): ?string;

    /**
     * Reads the document, hands it to `$change` and stores what it returns, all
     * under one lock. An exception from `$change` stores nothing and is rethrown.
     *
     * @param callable(?string): string $change the current JSON text (or null) to the new JSON text
     * @param array<string,string> $templateTitles template id => title, for stores that keep titles beside the document
     */
    public function update(callable $change, array $templateTitles = []): string;
}
