<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

/**
 * The mapping document in a JSON file. Writes go to a temporary file renamed
 * over the old one (a reader never sees half a document); a lock file beside it
 * serializes the read-modify-write of concurrent saves.
 */
final class FileMappingStore implements MappingStore
{
    public function __construct(private string $path)
    {
    }

    public function path(): string
    {
        return $this->path;
    }

    public function load(): ?string
    {
        if (!is_file($this->path)) {
            return null;
        }
        $text = @file_get_contents($this->path);
        if ($text === false) {
            throw new StoreUnavailable("cannot read the mapping file {$this->path}");
        }
        return $text;
    }

    public function update(callable $change, array $templateTitles = []): string
    {
        $lock = @fopen($this->path . '.lock', 'c');
        if ($lock === false) {
            throw new StoreUnavailable("cannot open the lock file {$this->path}.lock (is its directory writable?)");
        }
        try {
            if (!flock($lock, LOCK_EX)) {
                throw new StoreUnavailable("cannot lock {$this->path}.lock");
            }
            $next = $change($this->load());
            $tmp = $this->path . '.' . getmypid() . '.tmp';
            if (@file_put_contents($tmp, $next) === false || !@rename($tmp, $this->path)) {
                @unlink($tmp);
                throw new StoreUnavailable("cannot write the mapping file {$this->path}");
            }
            return $next;
        } finally {
            flock($lock, LOCK_UN);
            fclose($lock);
        }
    }
}
