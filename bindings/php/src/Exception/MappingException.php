<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/** Mapping document invalid, event not mapped or disabled, or a value breaks a keyword rule. */
class MappingException extends \RuntimeException implements NotifyException
{
    use CarriesStatus;
}
