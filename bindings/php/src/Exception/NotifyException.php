<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/** Every exception the package throws: `catch (NotifyException $e)` catches them all. */
interface NotifyException extends \Throwable
{
    /** The library status (see `FaShop\Notify\Status`). */
    public function getStatus(): int;

    /** The send outcome when the failed call was a send, else null. */
    public function getOutcome(): ?\FaShop\Notify\SendOutcome;
}
