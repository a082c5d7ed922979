<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

use FaShop\Notify\SendOutcome;

/** The status and outcome every NotifyException carries. */
trait CarriesStatus
{
    private int $status = 0;
    private ?SendOutcome $outcome = null;

    public static function fromStatus(int $status, string $message, ?SendOutcome $outcome = null, ?\Throwable $previous = null): static
    {
        $e = new static($message, $status, $previous);
        $e->status = $status;
        $e->outcome = $outcome;
        return $e;
    }

    public function getStatus(): int
    {
        return $this->status;
    }

    public function getOutcome(): ?SendOutcome
    {
        return $this->outcome;
    }
}
